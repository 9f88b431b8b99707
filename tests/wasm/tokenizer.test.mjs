// The tokenizer in the wasm build, under Node: the same corpus as the native
// suite (tests/vectors/tokenizer/corpus.mjs), with ids compared against the
// `tiktoken` npm package live, plus chat counts, the Claude estimate, errors
// and a hostile single piece.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { loadCore, repoRoot, wasmDir } from './load_core.mjs';
import { tokenizerCorpus } from '../vectors/tokenizer/corpus.mjs';

const require = createRequire(import.meta.url);
const { get_encoding } = require('tiktoken');
const assetDir = process.env.TM_TOKENIZER_DIR ?? path.resolve(wasmDir, '../tokenizer');
const encoder = new TextEncoder();
const bytes = (text) => encoder.encode(text);
const readAsset = (name) => new Uint8Array(fs.readFileSync(path.join(assetDir, `${name}.tmbpe`)));

const cookbook = JSON.parse(fs.readFileSync(path.join(repoRoot, 'tests/vectors/tokenizer/cookbook_chat.json'), 'utf8'));

test('counting before an encoding is loaded is an error, not a crash', async () => {
  const core = await loadCore();
  assert.equal(core.encodingLoaded('o200k_base'), false);
  const result = core.countTextTokens('o200k_base', bytes('hello'));
  assert.equal(result.ok, false);
  assert.equal(result.code, 'encoding_not_loaded');
  assert.equal(core.encodingForTokenizer('estimate'), 'o200k_base');
  assert.equal(core.encodingForTokenizer('cl100k_base'), 'cl100k_base');
});

test('assets load; anything else is refused', async () => {
  const core = await loadCore();
  const broken = readAsset('cl100k_base');
  broken[1000] ^= 1;
  assert.equal(core.loadEncoding(broken).code, 'encoding_asset_unknown');
  assert.equal(core.loadEncoding(new Uint8Array(0)).code, 'encoding_asset_unknown');
  for (const name of ['o200k_base', 'cl100k_base']) {
    const loaded = core.loadEncoding(readAsset(name));
    assert.equal(loaded.ok, true, loaded.message);
    assert.equal(loaded.name, name);
    assert.equal(core.encodingLoaded(name), true);
  }
});

for (const name of ['o200k_base', 'cl100k_base']) {
  test(`${name}: ids identical to tiktoken on the whole corpus`, async () => {
    const core = await loadCore();
    if (!core.encodingLoaded(name)) core.loadEncoding(readAsset(name));
    const reference = get_encoding(name);
    const corpus = tokenizerCorpus();
    assert.ok(corpus.length >= 4000);
    let identical = 0;
    for (const { text } of corpus) {
      const expected = Array.from(reference.encode_ordinary(text));
      const result = core.encodeOrdinary(name, bytes(text));
      assert.equal(result.ok, true, result.message);
      assert.deepEqual(Array.from(result.ids), expected, JSON.stringify(text));
      assert.equal(core.countTextTokens(name, bytes(text)).tokens, expected.length);
      identical++;
    }
    reference.free();
    console.log(`[ tokenizer/wasm ] ${name}: ${identical} of ${corpus.length} cases identical to tiktoken`);
  });
}

test('lone surrogates become U+FFFD through TextEncoder, as in tiktoken', async () => {
  const core = await loadCore();
  const reference = get_encoding('o200k_base');
  for (const text of ['a\ud800b', '\udc00', 'x\ud83d', '\ud83d\ude00']) {
    assert.deepEqual(Array.from(core.encodeOrdinary('o200k_base', bytes(text)).ids), Array.from(reference.encode_ordinary(text)));
  }
  reference.free();
  // Plain JS strings work too (without lone surrogates, which Embind's own
  // encoder mangles: hence TextEncoder in the SDK).
  assert.equal(core.countTextTokens('o200k_base', 'hello world').tokens, 2);
});

test('chat: the cookbook example is 124 on o200k_base and 129 on cl100k_base', async () => {
  const core = await loadCore();
  const json = JSON.stringify(cookbook.messages);
  for (const name of ['o200k_base', 'cl100k_base']) {
    assert.deepEqual(core.countChatTokens(name, bytes(json)), { ok: true, tokens: cookbook.expected[name], exact: true });
  }
  assert.deepEqual(core.countChatTokens('estimate', bytes(json)), { ok: true, tokens: 155, exact: false });
  const bad = core.countChatTokens('o200k_base', bytes('[{"role":"user"}]'));
  assert.equal(bad.code, 'chat_invalid');
});

test('the Claude estimate is flagged inexact', async () => {
  const core = await loadCore();
  assert.deepEqual(core.countTextTokens('estimate', bytes('hello world')), { ok: true, tokens: 3, exact: false });
  assert.equal(core.countTextTokens('p50k_base', bytes('x')).code, 'unknown_tokenizer');
  assert.equal(core.encodeOrdinary('estimate', bytes('x')).code, 'unknown_encoding');
});

// The work this takes is bounded by counting, natively, in the same C++
// (tests/core/tokenizer_bpe_test.cpp, AMegabytePieceTakesLinearWork); `make
// bench` (bench/run.mjs, the hostile series) times it here and there. The
// timeout only turns a hang into a failure: a quadratic encoder (tiktoken's
// merge loop) would take far longer than it on a megabyte.
test('a megabyte single piece is counted and encoded exactly', { timeout: 120_000 }, async () => {
  const core = await loadCore();
  const text = 'a'.repeat(1 << 20);
  const result = core.countTextTokens('o200k_base', bytes(text));
  assert.equal(result.ok, true, result.message);
  // "aaaaaaaa" is one token: 2^20 / 8 (the native `tokenmeter count` says the same).
  assert.equal(result.tokens, 131072);
  const encoded = core.encodeOrdinary('o200k_base', bytes(text));
  assert.equal(encoded.ok, true, encoded.message);
  assert.equal(encoded.ids.length, 131072);
  // tiktoken decodes the ids back to the text (its decoding is linear; its encoding of this piece is not).
  const reference = get_encoding('o200k_base');
  try {
    assert.equal(new TextDecoder().decode(reference.decode(encoded.ids)), text);
  } finally {
    reference.free();
  }
});
