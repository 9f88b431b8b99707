// Receipts from a running `tokenmeter serve`, verified by an independent JOSE
// implementation (the `jose` npm package) rather than tokenmeter's own core:
// a receipt any client library can check is the point of using JWS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as jose from 'jose';
import { spawnListening } from '../support/spawn_listening.mjs';
import { demoCatalogFile } from '../support/demo_billing.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tokenmeter = path.join(root, 'build/native/server/tokenmeter');
const serviceKey = 'interop-service-key-' + crypto.randomBytes(12).toString('hex');
const lemonSqueezySecret = 'interop-lemonsqueezy-' + crypto.randomBytes(12).toString('hex');
let server;
let baseUrl;
let work;

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-jose-'));
  const keygen = spawnSync(tokenmeter, ['keygen', '--out', path.join(work, 'key.json')]);
  assert.equal(keygen.status, 0, String(keygen.stderr));
  fs.writeFileSync(
    path.join(work, 'config.json'),
    JSON.stringify({
      db: `sqlite:${path.join(work, 'ledger.db')}`,
      jwt_secret: 'interop-jwt-secret-0123456789abcdefghijkl',
      service_keys: serviceKey,
      signing_key_file: path.join(work, 'key.json'),
      // Credit packs arrive as signed LemonSqueezy webhooks (the API itself
      // is never called here).
      catalog_file: demoCatalogFile,
      lemonsqueezy_api_base: 'http://127.0.0.1:9',
      lemonsqueezy_webhook_secret: lemonSqueezySecret,
    }),
  );
  // Port 0: the server takes a free port and says which.
  const started = await spawnListening(tokenmeter, ['serve', '--config', path.join(work, 'config.json'), '--listen', '127.0.0.1:0']);
  server = started.child;
  baseUrl = started.url;
});

after(() => {
  server?.kill('SIGTERM');
  fs.rmSync(work, { recursive: true, force: true });
});

async function service(pathname, body, key) {
  const response = await fetch(baseUrl + pathname, {
    method: body ? 'POST' : 'GET',
    headers: {
      authorization: `Bearer ${serviceKey}`,
      'content-type': 'application/json',
      ...(key ? { 'idempotency-key': key } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await response.json();
  assert.equal(response.status, 200, JSON.stringify(json));
  return json;
}

test('every receipt of a user verifies with jose against /v1/keys and chains by prev', async () => {
  const user = 'jose-' + crypto.randomBytes(4).toString('hex');
  const receipts = [];
  const first = await service(`/v1/users/${user}/usage`);
  receipts.push(first.receipt);
  for (let i = 0; i < 3; i += 1) {
    const authorized = await service(
      '/v1/usage/authorize',
      { user_id: user, operation: 'chat', model: 'gpt-4o', input_tokens: 100 + i, max_output_tokens: 50 },
      `a-${user}-${i}`,
    );
    receipts.push(authorized.usage.receipt);
    const committed = await service(
      '/v1/usage/commit',
      { reservation_id: authorized.reservation_id, input_tokens: 90 + i, output_tokens: 40 },
      `c-${user}-${i}`,
    );
    receipts.push(committed.usage.receipt);
  }

  const jwks = jose.createLocalJWKSet(await (await fetch(`${baseUrl}/v1/keys`)).json());
  let previous = null;
  for (const receipt of receipts) {
    const { payload, protectedHeader } = await jose.compactVerify(receipt, jwks, { algorithms: ['EdDSA'] });
    assert.equal(protectedHeader.typ, 'tokenmeter-receipt+jwt');
    const claims = JSON.parse(new TextDecoder().decode(payload));
    assert.equal(claims.iss, 'tokenmeter');
    assert.equal(claims.sub, user);
    if (previous === null) {
      assert.equal(claims.seq, 1);
      assert.equal(claims.prev, '');
    } else {
      assert.equal(claims.seq, previous.claims.seq + 1);
      const digest = crypto.createHash('sha256').update(previous.receipt.split('.')[1]).digest('base64url');
      assert.equal(claims.prev, digest);
    }
    previous = { receipt, claims };
  }
  // 1 (first use) + 3 × (authorize + commit): gpt-4o is 3x, so the last
  // receipt's usage is 3 × Σ(input + output) of the commits.
  assert.equal(previous.claims.seq, 7);
  assert.equal(previous.claims.tokens_used, 3 * (90 + 40 + 91 + 40 + 92 + 40));
  assert.equal(previous.claims.tokens_reserved, 0);
});

test('a receipt with one changed claim or another key is refused by jose', async () => {
  const user = 'jose-forged-' + crypto.randomBytes(4).toString('hex');
  const { receipt } = await service(`/v1/users/${user}/usage`);
  const jwks = jose.createLocalJWKSet(await (await fetch(`${baseUrl}/v1/keys`)).json());
  const [header, payload, signature] = receipt.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  claims.tokens_limit += 1;
  const forged = [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
  await assert.rejects(jose.compactVerify(forged, jwks), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });

  const { publicKey } = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const other = { ...(await jose.exportJWK(publicKey)), kid: JSON.parse(Buffer.from(header, 'base64url')).kid, alg: 'EdDSA' };
  await assert.rejects(jose.compactVerify(receipt, jose.createLocalJWKSet({ keys: [other] })), {
    code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  });
});

// An order webhook as LemonSqueezy signs it (hex HMAC-SHA256 of the raw body).
async function deliverOrder(event, user, refundedAmount) {
  const stamp = new Date(Date.UTC(2026, 0, 1, 0, 0, refundedAmount ? 2 : 1)).toISOString().replace('Z', '000Z');
  const body = JSON.stringify({
    meta: { event_name: event, custom_data: { user_id: user }, webhook_id: crypto.randomUUID() },
    data: {
      type: 'orders',
      id: '7700' + user.length,
      attributes: {
        store_id: 1, customer_id: 42, status: refundedAmount ? 'refunded' : 'paid', total: 499,
        refunded_amount: refundedAmount, refunded: refundedAmount > 0,
        first_order_item: { variant_id: 4 }, created_at: stamp, updated_at: stamp,
      },
    },
  });
  const signature = crypto.createHmac('sha256', lemonSqueezySecret).update(body).digest('hex');
  const response = await fetch(`${baseUrl}/v1/webhooks/lemonsqueezy`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-signature': signature }, body,
  });
  assert.equal(response.status, 200, await response.text());
}

test('receipts that claim credits (a pack, then its refund) verify with jose and show them', async () => {
  const user = 'jose-credits-' + crypto.randomBytes(4).toString('hex');
  await service(`/v1/users/${user}/usage`);
  await deliverOrder('order_created', user, 0);
  const bought = await service(`/v1/users/${user}/usage`);
  await deliverOrder('order_refunded', user, 499);
  const refunded = await service(`/v1/users/${user}/usage`);
  const jwks = jose.createLocalJWKSet(await (await fetch(`${baseUrl}/v1/keys`)).json());
  const claimsOf = async (receipt) =>
    JSON.parse(new TextDecoder().decode((await jose.compactVerify(receipt, jwks, { algorithms: ['EdDSA'] })).payload));
  const afterPack = await claimsOf(bought.receipt);
  assert.equal(afterPack.event, 'credit');
  assert.equal(afterPack.credits, 1000000);
  assert.equal(afterPack.credits_clawed, 0);
  assert.equal(bought.tokens.credits, 1000000);
  assert.equal(bought.tokens.remaining, afterPack.tokens_limit + 1000000);
  const afterRefund = await claimsOf(refunded.receipt);
  assert.equal(afterRefund.credits, 0);
  assert.equal(afterRefund.credits_clawed, 1000000);
  assert.equal(afterRefund.seq, afterPack.seq + 1);
  assert.equal(afterRefund.prev, crypto.createHash('sha256').update(bought.receipt.split('.')[1]).digest('base64url'));
});
