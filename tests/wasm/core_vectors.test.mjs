// The shared vectors of the native suite (tests/core/shared_vectors_test.cpp
// and receipt_test.cpp), checked against the wasm build under Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCore, readVectors } from './load_core.mjs';

const vectors = readVectors('core_vectors.json');
// Raw bytes cross Embind as Uint8Array (a JS string would be UTF-8 encoded).
const hex = (text) => new Uint8Array(Buffer.from(text, 'hex'));

test('cost vectors', async () => {
  const core = await loadCore();
  assert.ok(vectors.cost.length > 400);
  for (const c of vectors.cost) {
    const result = core.price(c.operation, c.model, c.input, c.output);
    const where = JSON.stringify(c);
    if (c.expect.error) {
      assert.equal(result.ok, false, where);
      assert.equal(result.code, c.expect.error, where);
    } else {
      assert.equal(result.ok, true, `${where} ${result.message}`);
      assert.equal(result.rawTokens, c.expect.raw, where);
      assert.equal(result.chargedTokens, c.expect.charged, where);
      assert.equal(result.avatars, c.expect.avatars, where);
    }
  }
});

test('cost refuses non-integer counts from JavaScript', async () => {
  const core = await loadCore();
  for (const bad of [0.5, NaN, Infinity, -Infinity, 1e300]) {
    const result = core.price('chat', 'gpt-4o', bad, 0);
    assert.equal(result.ok, false, String(bad));
  }
  assert.equal(core.price('chat', 'gpt-4o', 2 ** 60, 0).code, 'count_too_large');
  assert.equal(core.price('chat', 'gpt-4o', -(2 ** 60), 0).code, 'invalid_count');
});

test('period vectors', async () => {
  const core = await loadCore();
  assert.ok(vectors.periods.length > 1500);
  for (const c of vectors.periods) {
    const result = core.periodContaining(c.instant, c.anchor);
    const where = JSON.stringify(c);
    if (c.expect.error) {
      assert.equal(result.ok, false, where);
      assert.equal(result.code, c.expect.error, where);
    } else {
      assert.equal(result.ok, true, where);
      assert.equal(result.start, c.expect.start, where);
      assert.equal(result.end, c.expect.end, where);
      assert.equal(result.startText, new Date(c.expect.start * 1000).toISOString().replace('.000Z', 'Z'));
    }
  }
});

test('receipt vectors', async () => {
  const core = await loadCore();
  for (const c of vectors.receipts) {
    const result = core.verifyReceipt(c.jws, c.jwks);
    assert.equal(result.valid, c.expect.valid, c.name);
    if (!c.expect.valid) {
      assert.equal(result.code, c.expect.code, c.name);
      continue;
    }
    const claims = { ...c.expect.claims };
    claims.iss = 'tokenmeter';
    claims.period_start = new Date(claims.period_start * 1000).toISOString().replace('.000Z', 'Z');
    claims.period_end = new Date(claims.period_end * 1000).toISOString().replace('.000Z', 'Z');
    if (claims.event === '') delete claims.event;
    assert.deepEqual({ ...result.claims }, claims, c.name);
    assert.equal(result.chainDigest, c.expect.chain_digest, c.name);
  }
});

test('every single-bit flip of a receipt is refused', async () => {
  const core = await loadCore();
  const { jws, jwks } = vectors.receipts[1];
  assert.equal(core.verifyReceipt(jws, jwks).valid, true);
  let accepted = 0;
  for (let i = 0; i < jws.length; ++i) {
    for (let bit = 0; bit < 8; ++bit) {
      const forged = jws.slice(0, i) + String.fromCharCode(jws.charCodeAt(i) ^ (1 << bit)) + jws.slice(i + 1);
      if (core.verifyReceipt(forged, jwks).valid) accepted += 1;
    }
  }
  assert.equal(accepted, 0);
});

test('RFC 8037 appendix A.4 byte for byte', async () => {
  const core = await loadCore();
  const { seed, header, payload, jws, kid } = vectors.rfc8037;
  const signed = core.signCompact(header, payload, seed);
  assert.equal(signed.ok, true);
  assert.equal(signed.jws, jws);
  assert.equal(signed.kid, kid);
  assert.equal(jws.split('.')[2],
    'hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg');
});

test('Wycheproof Ed25519: all 151 cases give the expected verdict', async () => {
  const core = await loadCore();
  const document = readVectors('wycheproof_ed25519_test.json');
  let cases = 0;
  let agreed = 0;
  for (const group of document.testGroups) {
    const key = hex(group.publicKey.pk);
    for (const t of group.tests) {
      const verdict = core.ed25519Verify(hex(t.msg), hex(t.sig), key);
      cases += 1;
      if (verdict === (t.result === 'valid')) agreed += 1;
      else assert.fail(`tcId ${t.tcId}: ${t.comment}`);
    }
  }
  assert.equal(cases, 151);
  assert.equal(agreed, 151);
});

test('a bad catalog is an error value, and the default stays', async () => {
  const core = await loadCore();
  const result = core.setCatalog('{"version": 1}');
  assert.equal(result.ok, false);
  assert.equal(result.code, 'catalog_invalid_value');
  assert.equal(core.price('chat', 'claude-3-7-sonnet', 3, 0).chargedTokens, 8);
});
