// A statement from a running `tokenmeter serve` (GET /v1/me/statement),
// checked in the browser's verifier (@tokenmeter/wasm's verifyStatement, the
// core's verify_statement compiled to wasm) and by `tokenmeter verify`
// natively: the same verdict, and the same refusal code for each tampering.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnListening } from '../support/spawn_listening.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tokenmeter = path.join(root, 'build/native/server/tokenmeter');
const wasm = await import(path.join(root, 'build/wasm/package/node.js'));
const serviceKey = 'interop-service-key-' + crypto.randomBytes(12).toString('hex');
const jwtSecret = 'interop-jwt-secret-0123456789abcdefghijkl';
let server;
let baseUrl;
let work;

before(async () => {
  await wasm.init();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-statement-'));
  const keygen = spawnSync(tokenmeter, ['keygen', '--out', path.join(work, 'key.json')]);
  assert.equal(keygen.status, 0, String(keygen.stderr));
  fs.writeFileSync(path.join(work, 'config.json'), JSON.stringify({
    db: `sqlite:${path.join(work, 'ledger.db')}`, jwt_secret: jwtSecret, service_keys: serviceKey,
    signing_key_file: path.join(work, 'key.json'),
  }));
  const started = await spawnListening(tokenmeter, ['serve', '--config', path.join(work, 'config.json'), '--listen', '127.0.0.1:0']);
  server = started.child;
  baseUrl = started.url;
});

after(() => {
  server?.kill('SIGTERM');
  fs.rmSync(work, { recursive: true, force: true });
});

async function call(pathname, { body, key, token = serviceKey } = {}) {
  const response = await fetch(baseUrl + pathname, {
    method: body ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return text;
}

// `tokenmeter verify` on the same bytes: its exit status and refusal code.
function nativeVerdict(statement, jwks) {
  const file = path.join(work, `statement-${crypto.randomBytes(4).toString('hex')}.json`);
  fs.writeFileSync(file, statement);
  const args = ['verify', file];
  if (jwks) {
    fs.writeFileSync(`${file}.keys`, jwks);
    args.push('--keys', `${file}.keys`);
  }
  const run = spawnSync(tokenmeter, args, { encoding: 'utf8' });
  const refused = /refused: ([a-z_]+)/.exec(`${run.stdout}${run.stderr}`);
  return { status: run.status, code: refused?.[1] ?? null };
}

test('the browser verifier and tokenmeter verify agree on a statement and on every tampering', async () => {
  const user = 'stmt-' + crypto.randomBytes(4).toString('hex');
  await call(`/v1/users/${user}/usage`);
  for (let i = 0; i < 3; i += 1) {
    const authorized = JSON.parse(await call('/v1/usage/authorize', {
      body: { user_id: user, operation: 'chat', model: 'gpt-4o', input_tokens: 100 + i, max_output_tokens: 50 }, key: `a-${user}-${i}`,
    }));
    await call('/v1/usage/commit', { body: { reservation_id: authorized.reservation_id, input_tokens: 90 + i, output_tokens: 40 }, key: `c-${user}-${i}` });
  }
  await call('/v1/usage/record', { body: { user_id: user, operation: 'avatar' }, key: `r-${user}` });
  const token = spawnSync(tokenmeter, ['dev-token', '--secret', jwtSecret, '--sub', user], { encoding: 'utf8' }).stdout.trim();
  const statementText = await call('/v1/me/statement', { token });
  const jwks = await call('/v1/keys');
  const usage = JSON.parse(await call(`/v1/users/${user}/usage`));

  const verified = wasm.verifyStatement(statementText, JSON.parse(jwks));
  assert.equal(verified.valid, true, JSON.stringify(verified));
  assert.equal(verified.userId, user);
  assert.equal(verified.pinned, true);
  assert.equal(verified.charges, 4);
  assert.equal(verified.tokensUsed, usage.tokens.used);
  assert.equal(verified.avatarsUsed, 1);
  assert.equal(wasm.verifyStatement(JSON.parse(statementText)).valid, true); // the statement's own keys
  assert.deepEqual(nativeVerdict(statementText, jwks), { status: 0, code: null });

  const statement = JSON.parse(statementText);
  const flip = (jws) => { const at = jws.length - 5; return jws.slice(0, at) + (jws[at] === 'A' ? 'B' : 'A') + jws.slice(at + 1); };
  const tamperings = {
    charge_mismatch: { ...statement, charges: statement.charges.slice(1) },
    bad_signature: { ...statement, receipts: statement.receipts.map((r, i) => (i === 2 ? flip(r) : r)) },
    broken_chain: { ...statement, receipts: statement.receipts.filter((_, i) => i !== 3) },
    wrong_user: { ...statement, user_id: 'someone-else' },
  };
  for (const [expected, tampered] of Object.entries(tamperings)) {
    const text = JSON.stringify(tampered);
    const inBrowser = wasm.verifyStatement(text, jwks);
    const native = nativeVerdict(text, jwks);
    assert.equal(inBrowser.valid, false, expected);
    assert.deepEqual({ status: native.status, code: native.code }, { status: 1, code: inBrowser.code }, `${expected}: native and wasm differ`);
    assert.equal(inBrowser.code, expected);
  }
  // Another server's keys: every signature fails.
  const other = spawnSync(tokenmeter, ['keygen', '--out', path.join(work, 'other.json')]);
  assert.equal(other.status, 0);
  const otherJwk = JSON.parse(fs.readFileSync(path.join(work, 'other.json'), 'utf8'));
  delete otherJwk.d;
  assert.equal(wasm.verifyStatement(statementText, { keys: [otherJwk] }).code, 'bad_signature');
});
