// The SDK's estimate() against the estimate rule's shared cases
// (tests/vectors/estimate_vectors.json): it refuses what POST
// /v1/usage/authorize refuses, with the same code (tests/server/
// estimate_rule_test.cpp), and sizes the rest to the same charge (the native
// core checks the same file, tests/core/estimate_test.cpp). Then what only
// the SDK's JavaScript arguments can get wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { importPackage, packageDir } from './package_paths.mjs';
import { readVectors } from './load_core.mjs';

const sdk = await importPackage('node.js');
const { createTokenmeter } = await importPackage('sdk.js');
const { cases } = readVectors('estimate_vectors.json');

const camel = (name) => name.replace(/_([a-z])/g, (_, letter) => letter.toUpperCase());
const argumentOf = (request) => Object.fromEntries(Object.entries(request).map(([key, value]) => [camel(key), value]));

// An SDK instance of its own, not yet initialized (setCatalog changes only its catalog).
function nodeTokenmeter() {
  return createTokenmeter({
    instantiate: async () => {
      const factory = createRequire(import.meta.url)(path.join(packageDir, 'tokenmeter.node.cjs'));
      return factory({ wasmBinary: await fs.readFile(path.join(packageDir, 'tokenmeter.wasm')) });
    },
    readEncoding: async (encoding) => new Uint8Array(await fs.readFile(path.join(packageDir, 'tokenizer', `${encoding}.tmbpe`))),
  });
}

async function ready() {
  await sdk.init();
  await sdk.loadTokenizer('gpt-4o');
  await sdk.loadTokenizer('text-embedding-3-small');
}

test('estimate() answers every shared case as the server does', async () => {
  await ready();
  assert.ok(cases.length > 30);
  for (const { name, request, expect } of cases) {
    const input = argumentOf(request);
    if (expect.error) {
      assert.throws(() => sdk.estimate(input), (error) => {
        assert.ok(error instanceof sdk.TokenmeterError, name);
        assert.equal(error.code, expect.sdk_error ?? expect.error, name);
        if (expect.field) assert.ok(error.message.includes(camel(expect.field)), `${name}: ${error.message}`);
        return true;
      }, name);
      continue;
    }
    const estimate = sdk.estimate(input);
    assert.deepEqual(
      [estimate.inputTokens, estimate.rawTokens, estimate.chargedTokens, estimate.avatars, estimate.exact],
      [expect.input_tokens, expect.raw_tokens, expect.charged_tokens, expect.avatars, expect.exact],
      name);
  }
});

test('estimate() converts JavaScript arguments the way the SDK always has', async () => {
  await ready();
  // A null count is 0; anything but a safe non-negative integer is invalid_count.
  assert.equal(sdk.estimate({ operation: 'chat', model: 'gpt-4o', inputTokens: null, maxOutputTokens: 4 }).chargedTokens, 12);
  for (const count of ['10', 2 ** 53, -0.5, NaN, Infinity, {}]) {
    assert.throws(() => sdk.estimate({ operation: 'chat', model: 'gpt-4o', inputTokens: count }),
      { code: 'invalid_count', message: 'inputTokens must be a non-negative integer' }, String(count));
  }
  // A null model is no model.
  assert.throws(() => sdk.estimate({ operation: 'chat', model: null, inputTokens: 1 }), { code: 'missing_field' });
  assert.throws(() => sdk.estimate({ operation: 'chat', model: 4, inputTokens: 1 }), { code: 'invalid_value' });
  assert.throws(() => sdk.estimate({ model: 'gpt-4o', inputTokens: 1 }), { code: 'missing_field', message: 'missing field operation' });
  assert.throws(() => sdk.estimate({ operation: 3, model: 'gpt-4o', inputTokens: 1 }), { code: 'invalid_value' });
  // Counts past what a request may ask for are the cost function's to refuse.
  assert.throws(() => sdk.estimate({ operation: 'chat', model: 'gpt-4o', inputTokens: 2 ** 53 - 1, maxOutputTokens: 1 }),
    { code: 'count_too_large' });
});

test('estimate() counts with the loaded encoding only, and asks for nothing it does not count', async () => {
  const tokenmeter = nodeTokenmeter();
  assert.throws(() => tokenmeter.estimate({ operation: 'avatar' }), { code: 'not_initialized' });
  await tokenmeter.init();
  assert.throws(() => tokenmeter.estimate({ operation: 'chat', model: 'gpt-4o', text: 'hi' }), { code: 'encoding_not_loaded' });
  assert.throws(() => tokenmeter.estimate({ operation: 'chat', model: 'gpt-4o', messages: [] }), { code: 'encoding_not_loaded' });
  assert.equal(tokenmeter.estimate({ operation: 'chat', model: 'gpt-4o', inputTokens: 2 }).chargedTokens, 6);
  await tokenmeter.loadTokenizer('gpt-4o');
  assert.equal(tokenmeter.estimate({ operation: 'chat', model: 'gpt-4o', text: 'hello world' }).inputTokens, 2);
});

test('estimate() weighs the prompt and the max output with the model\'s token class weights', async () => {
  const tokenmeter = nodeTokenmeter();
  await tokenmeter.init();
  const before = tokenmeter.estimate({ operation: 'chat', model: 'gpt-4o', inputTokens: 100, maxOutputTokens: 33 });
  assert.equal(before.chargedTokens, 399);  // no weights: (100 + 33) x 3
  assert.equal(tokenmeter.catalog().models.find((model) => model.id === 'gpt-4o').weights, undefined);
  const weighted = JSON.parse(JSON.stringify(tokenmeter.catalog()));
  weighted.models.find((model) => model.id === 'gpt-4o').weights = { input: '3/2', cached_input: '1/2', output: '4' };
  tokenmeter.setCatalog(weighted);
  assert.deepEqual(tokenmeter.catalog().models.find((model) => model.id === 'gpt-4o').weights,
    { input: '3/2', cached_input: '1/2', output: '4', reasoning: '1' });
  const after = tokenmeter.estimate({ operation: 'chat', model: 'gpt-4o', inputTokens: 100, maxOutputTokens: 33 });
  // (100 x 3/2 + 33 x 4) x 3 = 846; raw stays input + max output, unweighted.
  assert.deepEqual([after.rawTokens, after.chargedTokens, after.inputTokens], [133, 846, 100]);
  assert.equal(tokenmeter.price('chat', 'gpt-4o', 100, 33).chargedTokens, 846);
  // An unknown class is refused as the server refuses it.
  weighted.models.find((model) => model.id === 'gpt-4o').weights = { cache_write: '2' };
  assert.throws(() => tokenmeter.setCatalog(weighted), { code: 'catalog_unknown_field' });
});

test('setCatalog() takes GET /v1/catalog as served with a dated price book (effective_from, next)', async () => {
  const tokenmeter = nodeTokenmeter();
  await tokenmeter.init();
  const served = JSON.parse(JSON.stringify(tokenmeter.catalog()));
  served.version = '2027-01-01';
  served.effective_from = '2027-01-01T00:00:00Z';
  served.next = { version: '2027-02-01', effective_from: '2027-02-01T00:00:00Z' };
  served.models.find((model) => model.id === 'gpt-4o').multiplier = '4';
  tokenmeter.setCatalog(served);
  assert.equal(tokenmeter.catalog().version, '2027-01-01');
  assert.equal(tokenmeter.catalog().effective_from, '2027-01-01T00:00:00Z');
  assert.equal(tokenmeter.price('chat', 'gpt-4o', 100, 33).chargedTokens, 532);  // (100 + 33) x 4
  served.next = { version: '2027-02-01', effective_from: 'soon' };
  assert.throws(() => tokenmeter.setCatalog(served), { code: 'catalog_invalid_value' });
});
