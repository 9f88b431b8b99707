// encode, decode and tokenCount of @tokenmeter/wasm (for truncating text to
// a budget): ids equal to tiktoken's, decode inverts encode, a cut inside a
// character decodes to U+FFFD, and bad ids and estimate-only models are
// TokenmeterErrors with their codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { importPackage } from './package_paths.mjs';

const require = createRequire(import.meta.url);
const { get_encoding } = require('tiktoken');
const tm = await importPackage('node.js');
await tm.init();
await tm.loadTokenizer('gpt-4o');
await tm.loadTokenizer('text-embedding-3-small');

const texts = ['Hello, world!', 'naïve café — 東京 🚀🚀', '   leading spaces\n\ttabs', 'a'.repeat(1000), ''];
const models = { 'gpt-4o': 'o200k_base', 'text-embedding-3-small': 'cl100k_base' };

for (const [model, encoding] of Object.entries(models)) {
  test(`${model}: encode equals tiktoken's encode_ordinary, decode inverts it, tokenCount is its length`, () => {
    const reference = get_encoding(encoding);
    try {
      for (const text of texts) {
        const ids = tm.encode(text, model);
        assert.ok(ids instanceof Uint32Array);
        assert.deepEqual(Array.from(ids), Array.from(reference.encode_ordinary(text)), text);
        assert.equal(tm.decode(ids, model), text);
        assert.equal(tm.decode(Array.from(ids), model), text);
        assert.equal(tm.tokenCount(text, model), ids.length);
      }
    } finally {
      reference.free();
    }
  });
}

test('truncating to a budget: the first ids decode to a prefix, a cut character becomes U+FFFD', () => {
  const text = 'The quick brown fox jumps over the lazy dog. '.repeat(20);
  const ids = tm.encode(text, 'gpt-4o');
  const head = tm.decode(ids.slice(0, 10), 'gpt-4o');
  assert.ok(text.startsWith(head) && head.length > 0);
  const emoji = tm.encode('🚀', 'gpt-4o');
  if (emoji.length > 1) assert.match(tm.decode(emoji.slice(0, 1), 'gpt-4o'), /\uFFFD/);
});

test('bad ids and models without an exact tokenizer are refused with codes', () => {
  for (const bad of [-1, 1.5, 2 ** 32, Number.NaN, '7']) {
    assert.throws(() => tm.decode([bad], 'gpt-4o'), { name: 'TokenmeterError', code: 'invalid_token' }, String(bad));
  }
  assert.throws(() => tm.decode([4_000_000], 'gpt-4o'), { name: 'TokenmeterError', code: 'unknown_token_id' });
  assert.throws(() => tm.encode('hi', 'claude-3-7-sonnet'), { name: 'TokenmeterError', code: 'no_exact_tokenizer' });
  assert.throws(() => tm.decode([1], 'claude-3-7-sonnet'), { name: 'TokenmeterError', code: 'no_exact_tokenizer' });
  assert.throws(() => tm.encode('hi', 'no-such-model'), { name: 'TokenmeterError', code: 'unknown_model' });
});
