// @tokenmeter/wasm's JavaScript API (DESIGN.md §10) over the Node build:
// idempotent init, lazy once-only encoding loads, errors with codes, and
// estimates that are the core's price() of the counted input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { importPackage, packageDir } from './package_paths.mjs';
import { readVectors } from './load_core.mjs';

const sdk = await importPackage('node.js');
const { createTokenmeter } = await importPackage('sdk.js');
const receipts = readVectors('core_vectors.json').receipts;

// A second instance whose environment counts what it is asked for.
function countingTokenmeter() {
  const calls = { instantiate: 0, reads: [] };
  const tokenmeter = createTokenmeter({
    instantiate: async () => {
      calls.instantiate += 1;
      const factory = createRequire(import.meta.url)(path.join(packageDir, 'tokenmeter.node.cjs'));
      return factory({ wasmBinary: await fs.readFile(path.join(packageDir, 'tokenmeter.wasm')) });
    },
    readEncoding: async (encoding) => {
      calls.reads.push(encoding);
      await new Promise((resolve) => setTimeout(resolve, 5));
      return new Uint8Array(await fs.readFile(path.join(packageDir, 'tokenizer', `${encoding}.tmbpe`)));
    },
  });
  return { tokenmeter, calls };
}

test('calls before init() throw not_initialized', () => {
  const { tokenmeter } = countingTokenmeter();
  assert.throws(() => tokenmeter.price('chat', 'gpt-4o', 1, 1), { name: 'TokenmeterError', code: 'not_initialized' });
});

test('init() is idempotent: one instantiation for concurrent and later calls', async () => {
  const { tokenmeter, calls } = countingTokenmeter();
  const first = tokenmeter.init();
  assert.equal(tokenmeter.init(), first);
  await Promise.all([first, tokenmeter.init()]);
  await tokenmeter.init();
  assert.equal(calls.instantiate, 1);
  assert.equal(tokenmeter.isReady(), true);
});

test('encodings are fetched lazily, once, and shared by the models that use them', async () => {
  const { tokenmeter, calls } = countingTokenmeter();
  await tokenmeter.init();
  assert.deepEqual(calls.reads, []);
  assert.throws(() => tokenmeter.countTokens('hi', 'gpt-4o'), { code: 'encoding_not_loaded' });
  await Promise.all([tokenmeter.loadTokenizer('gpt-4o'), tokenmeter.loadTokenizer('gpt-4o-mini'),
    tokenmeter.loadTokenizer('claude-3-5-sonnet')]);
  await tokenmeter.loadTokenizer('gpt-4o');
  assert.deepEqual(calls.reads, ['o200k_base']);
  assert.equal(tokenmeter.tokenizerReady('text-embedding-3-small'), false);
  await tokenmeter.loadTokenizer('text-embedding-3-small');
  assert.deepEqual(calls.reads, ['o200k_base', 'cl100k_base']);
});

test('counts match tiktoken for the OpenAI models and are flagged inexact for Claude', async () => {
  await sdk.init();
  await sdk.loadTokenizer('gpt-4o');
  await sdk.loadTokenizer('text-embedding-3-small');
  assert.deepEqual(sdk.countTokens('hello world', 'gpt-4o'), { tokens: 2, exact: true });
  assert.deepEqual(sdk.countTokens('hello world', 'text-embedding-3-small'), { tokens: 2, exact: true });
  assert.equal(sdk.countTokens('hello world', 'claude-3-5-sonnet').exact, false);
  const chat = sdk.countChatTokens([{ role: 'user', content: 'hello world' }], 'gpt-4o');
  assert.equal(chat.tokens, 2 + 3 + 1 + 3); // content, per message, role, reply priming
});

test('estimate is the core price of the counted input plus maxOutputTokens', async () => {
  await sdk.init();
  await sdk.loadTokenizer('gpt-4o');
  const text = 'The quick brown fox jumps over the lazy dog. '.repeat(20);
  const input = sdk.countTokens(text, 'gpt-4o').tokens;
  const estimate = sdk.estimate({ operation: 'chat', model: 'gpt-4o', text, maxOutputTokens: 100 });
  assert.equal(estimate.inputTokens, input);
  assert.equal(estimate.rawTokens, input + 100);
  assert.equal(estimate.chargedTokens, (input + 100) * 3);
  assert.equal(estimate.exact, true);
  const claude = sdk.estimate({ operation: 'chat', model: 'claude-3-7-sonnet', inputTokens: 3, maxOutputTokens: 0 });
  assert.deepEqual([claude.rawTokens, claude.chargedTokens, claude.exact], [3, 8, false]); // ceil(3 × 5/2)
  const avatar = sdk.estimate({ operation: 'avatar' });
  assert.deepEqual([avatar.chargedTokens, avatar.avatars], [10000, 1]);
});

test('bad input is an exception with the core code', async () => {
  await sdk.init();
  assert.throws(() => sdk.estimate({ operation: 'chat', model: 'gpt-5', inputTokens: 1 }), { code: 'unknown_model' });
  assert.throws(() => sdk.estimate({ operation: 'chat', model: 'gpt-4o', inputTokens: 1.5 }), { code: 'invalid_count' });
  assert.throws(() => sdk.estimate({ operation: 'chat', model: 'gpt-4o', text: 'a', inputTokens: 1 }), { code: 'missing_field' });
  assert.throws(() => sdk.price('embedding', 'gpt-4o', 1, 0), (error) => error instanceof sdk.TokenmeterError && error.code.length > 0);
  assert.throws(() => sdk.setCatalog('{"version":'), { name: 'TokenmeterError' });
});

test('verifyReceipt accepts the signed vectors and refuses tampering without throwing', async () => {
  await sdk.init();
  const { jws, jwks, expect } = receipts[0];
  const verified = sdk.verifyReceipt(jws, JSON.parse(jwks));
  assert.equal(verified.valid, true);
  assert.equal(verified.claims.seq, expect.claims.seq);
  assert.equal(verified.claims.tokens_used, expect.claims.tokens_used);
  assert.equal(verified.chainDigest, expect.chain_digest);
  const tampered = jws.slice(0, -3) + (jws.endsWith('AAA') ? 'BBB' : 'AAA');
  const refused = sdk.verifyReceipt(tampered, jwks);
  assert.equal(refused.valid, false);
  assert.ok(refused.code);
  assert.equal(sdk.verifyReceipt('', jwks).valid, false);
});

test('remainingAfter says what is left and whether it fits', async () => {
  const snapshot = { tokens: { remaining: 1000 }, avatars: { remaining: 1 } };
  assert.deepEqual(sdk.remainingAfter(snapshot, { chargedTokens: 400, avatars: 0 }), { tokens: 600, avatars: 1, fits: true });
  assert.deepEqual(sdk.remainingAfter(snapshot, { chargedTokens: 1001, avatars: 0 }), { tokens: -1, avatars: 1, fits: false });
  assert.equal(sdk.remainingAfter(snapshot, { chargedTokens: 10, avatars: 2 }).fits, false);
});

test('a wasm that cannot be loaded is a TokenmeterError (wasm_unavailable), and init() can be retried', async () => {
  let attempts = 0;
  const tokenmeter = createTokenmeter({
    instantiate: async () => {
      attempts += 1;
      const factory = createRequire(import.meta.url)(path.join(packageDir, 'tokenmeter.node.cjs'));
      // What a 404 page served as the .wasm looks like to Emscripten.
      const bytes = attempts === 1 ? new TextEncoder().encode('<!doctype html><title>Not found</title>')
        : await fs.readFile(path.join(packageDir, 'tokenmeter.wasm'));
      return factory({ wasmBinary: bytes, printErr: () => {} });
    },
    readEncoding: async () => { throw new Error('not needed'); },
  });
  await assert.rejects(tokenmeter.init(), (error) => {
    assert.equal(error.name, 'TokenmeterError');
    assert.equal(error.code, 'wasm_unavailable');
    return true;
  });
  await tokenmeter.init();
  assert.equal(tokenmeter.isReady(), true);
  assert.throws(() => tokenmeter.countTokens('hi', 'gpt-4o'), (error) => error.code === 'encoding_not_loaded' && /loadTokenizer/.test(error.message) && !/loadEncoding/.test(error.message));
});
