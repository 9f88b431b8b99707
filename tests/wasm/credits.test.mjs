// Credits in @tokenmeter/wasm (DESIGN.md §3, §6, §9): receipts that claim
// purchased credits or a debt, verified by the package, with the balance the
// core derives (capacity = limit + credits, remaining never below zero), and
// remainingAfter deciding by the ledger's own rule. The receipts are signed
// here by the core with the RFC 8037 test key, as the server would sign them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importPackage } from './package_paths.mjs';
import { loadCore, readVectors } from './load_core.mjs';

const sdk = await importPackage('node.js');
const { seed, x, kid } = readVectors('core_vectors.json').rfc8037;
const jwks = { keys: [{ kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' }] };

// A receipt as the server writes it: the claims with sorted keys, compact.
async function signReceipt(balance) {
  const claims = {
    iss: 'tokenmeter', sub: 'user-credits', iat: 1764000100, seq: 1, prev: '', plan: 'free',
    period_start: '2025-11-24T00:00:00Z', period_end: '2025-12-24T00:00:00Z',
    tokens_limit: 250000, tokens_used: 0, tokens_reserved: 0, avatars_limit: 5, avatars_used: 0, avatars_reserved: 0,
    event: 'credits_added', ...balance,
  };
  const payload = JSON.stringify(Object.fromEntries(Object.entries(claims).sort(([a], [b]) => (a < b ? -1 : 1))));
  const header = JSON.stringify({ alg: 'EdDSA', kid, typ: 'tokenmeter-receipt+jwt' });
  const signed = (await loadCore()).signCompact(header, payload, seed);
  assert.equal(signed.ok, true, signed.message);
  assert.equal(signed.kid, kid);
  return signed.jws;
}

// The API's snapshot of a verified balance (GET /v1/me/usage), as the server builds it.
const snapshotOf = ({ tokens, avatars }) => ({ tokens: { ...tokens }, avatars: { ...avatars } });

test('a receipt without credits claims none, and its balance has credits 0 and capacity = limit', async () => {
  await sdk.init();
  const verified = sdk.verifyReceipt(await signReceipt({ tokens_used: 1000, tokens_reserved: 17 }), jwks);
  assert.equal(verified.valid, true, verified.message);
  assert.equal('credits' in verified.claims, false);
  assert.equal('credits_clawed' in verified.claims, false);
  assert.deepEqual(verified.balance, {
    tokens: { limit: 250000, used: 1000, reserved: 17, credits: 0, capacity: 250000, remaining: 248983 },
    avatars: { limit: 5, used: 0, reserved: 0, remaining: 5 },
  });
});

test('credits from a pack add to the capacity and to what remains', async () => {
  await sdk.init();
  const jws = await signReceipt({ credits: 1000000, credits_clawed: 0, tokens_used: 300000, tokens_reserved: 5000 });
  const verified = sdk.verifyReceipt(jws, JSON.stringify(jwks));
  assert.equal(verified.valid, true, verified.message);
  assert.equal(verified.claims.credits, 1000000);
  assert.equal(verified.claims.credits_clawed, 0);
  // Used past the plan's 250,000: the rest comes out of the credits.
  assert.deepEqual(verified.balance.tokens, { limit: 250000, used: 300000, reserved: 5000, credits: 1000000, capacity: 1250000, remaining: 945000 });

  const snapshot = snapshotOf(verified.balance);
  assert.deepEqual(sdk.remainingAfter(snapshot, { chargedTokens: 945000, avatars: 0 }), { tokens: 0, avatars: 5, fits: true });
  assert.deepEqual(sdk.remainingAfter(snapshot, { chargedTokens: 945001, avatars: 0 }), { tokens: -1, avatars: 5, fits: false });
  // A server snapshot before credit packs has no tokens.credits: read as 0.
  const { credits, ...withoutCredits } = snapshot.tokens;
  assert.equal(sdk.remainingAfter({ ...snapshot, tokens: withoutCredits }, { chargedTokens: 1, avatars: 0 }).fits, false);
});

test('a debt (credits refunded after they were spent) leaves nothing, and nothing fits, not even a charge of zero', async () => {
  await sdk.init();
  // 400,000 used on a 250,000 plan, then a refund took back 300,000 credits
  // of which 150,000 were already spent: credits -150,000.
  const jws = await signReceipt({ credits: -150000, credits_clawed: 300000, tokens_used: 400000 });
  const verified = sdk.verifyReceipt(jws, jwks);
  assert.equal(verified.valid, true, verified.message);
  assert.equal(verified.claims.credits, -150000);
  assert.equal(verified.claims.credits_clawed, 300000);
  assert.deepEqual(verified.balance.tokens, { limit: 250000, used: 400000, reserved: 0, credits: -150000, capacity: 100000, remaining: 0 });

  const snapshot = snapshotOf(verified.balance);
  assert.deepEqual(sdk.remainingAfter(snapshot, { chargedTokens: 0, avatars: 0 }), { tokens: 0, avatars: 5, fits: false });
  assert.equal(sdk.remainingAfter(snapshot, { chargedTokens: 0, avatars: 1 }).fits, false);
  // With only `remaining` (no counts) the SDK can but subtract, as before.
  assert.equal(sdk.remainingAfter({ tokens: { remaining: 0 }, avatars: { remaining: 5 } }, { chargedTokens: 0, avatars: 0 }).fits, true);
});

test('credit claims must come together and stay in range', async () => {
  await sdk.init();
  const lone = sdk.verifyReceipt(await signReceipt({ credits: 5 }), jwks);
  assert.equal(lone.valid, false);
  assert.equal(lone.code, 'receipt_claims_invalid');
  const huge = sdk.verifyReceipt(await signReceipt({ credits: -(2 ** 53), credits_clawed: 0 }), jwks);
  assert.equal(huge.valid, false);
});

test('remainingAfter refuses counts outside the ledger and a sum past its range', async () => {
  await sdk.init();
  const balance = { tokens: { limit: 10, used: 0, reserved: 0, credits: 0 }, avatars: { limit: 1, used: 0, reserved: 0 } };
  for (const bad of [{ used: -1 }, { used: 1.5 }, { limit: 2 ** 53 }, { credits: -(2 ** 53) }, { reserved: '3' }]) {
    assert.throws(() => sdk.remainingAfter({ ...balance, tokens: { ...balance.tokens, ...bad } }, { chargedTokens: 1, avatars: 0 }),
      { name: 'TokenmeterError', code: 'invalid_count' }, JSON.stringify(bad));
  }
  assert.throws(() => sdk.remainingAfter(balance, { chargedTokens: -1, avatars: 0 }), { code: 'invalid_count' });
  const max = 2 ** 53 - 1;
  const rich = { tokens: { limit: max, used: max, reserved: 0, credits: max }, avatars: balance.avatars };
  assert.equal(sdk.remainingAfter(rich, { chargedTokens: 1, avatars: 0 }).fits, false); // would leave the ledger's range
});
