// Writes tests/vectors/core_vectors.json: cost, period and receipt cases that
// the native (GoogleTest) and the wasm (Node) suites both check.
//
// The expectations come from code that shares nothing with the core: costs
// from BigInt arithmetic over DESIGN.md §3's table, periods from JavaScript's
// Date, receipts signed and hashed with Node's crypto (Ed25519, SHA-256).
// Deterministic: fixed seeds, fixed keys, fixed iat values.
import crypto from 'node:crypto';

// A small deterministic PRNG (mulberry32), so the file is stable.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(20261124);
const below = (n) => Math.floor(random() * n);

// ---- costs -----------------------------------------------------------------
const COUNT_MAX = 2n ** 53n - 1n;
const models = {
  'gpt-4o-mini': { num: 1n, den: 1n, operations: ['chat'] },
  'gpt-4o': { num: 3n, den: 1n, operations: ['chat'] },
  'claude-3-5-sonnet': { num: 2n, den: 1n, operations: ['chat'] },
  'claude-3-7-sonnet': { num: 5n, den: 2n, operations: ['chat'] },
  'text-embedding-3-small': { num: 1n, den: 1n, operations: ['embedding'] },
};

function expectedCost(operation, model, input, output) {
  const i = BigInt(input), o = BigInt(output);
  if (!['chat', 'embedding', 'avatar'].includes(operation)) return { error: 'unknown_operation' };
  if (i < 0n || o < 0n) return { error: 'invalid_count' };
  if (i > COUNT_MAX || o > COUNT_MAX || i + o > COUNT_MAX) return { error: 'count_too_large' };
  if (model !== '' && !(model in models)) return { error: 'unknown_model' };
  if (operation === 'avatar') {
    if (i !== 0n || o !== 0n) return { error: 'tokens_not_allowed' };
    return { raw: 10000, charged: 10000, avatars: 1 };
  }
  if (model === '') return { error: 'missing_field' };
  const m = models[model];
  if (!m.operations.includes(operation)) return { error: 'model_not_allowed' };
  if (operation === 'embedding' && o !== 0n) return { error: 'output_not_allowed' };
  const raw = i + o;
  const scaled = raw * m.num;
  const charged = (scaled + m.den - 1n) / m.den;
  if (charged > COUNT_MAX) return { error: 'count_too_large' };
  return { raw: Number(raw), charged: Number(charged), avatars: 0 };
}

function costCases() {
  const cases = [];
  const add = (operation, model, input, output) =>
    cases.push({ operation, model, input, output, expect: expectedCost(operation, model, input, output) });
  const counts = [0, 1, 2, 3, 7, 999, 1000, 1001, 4096, 250000, 10000000];
  for (const model of Object.keys(models)) {
    const operation = models[model].operations[0];
    for (const input of counts) {
      for (const output of operation === 'chat' ? [0, 1, 5, 4096] : [0]) add(operation, model, input, output);
    }
    for (let k = 0; k < 60; ++k) {
      const input = below(2 ** 31);
      add(operation, model, input, operation === 'chat' ? below(2 ** 20) : 0);
    }
    // The largest raw count whose charge stays <= 2^53 - 1, and one past it.
    const m = models[model];
    const largest = (COUNT_MAX * m.den) / m.num;
    add(operation, model, Number(largest), 0);
    add(operation, model, Number(largest + 1n), 0);
  }
  add('avatar', '', 0, 0);
  add('avatar', 'gpt-4o', 0, 0);
  add('avatar', '', 1, 0);
  add('chat', 'gpt-4o', -1, 0);
  add('chat', 'gpt-4o', 0, -1);
  add('chat', 'gpt-5', 1, 1);
  add('chat', '', 1, 1);
  add('video', 'gpt-4o', 1, 1);
  add('embedding', 'gpt-4o', 1, 0);
  add('chat', 'text-embedding-3-small', 1, 0);
  add('embedding', 'text-embedding-3-small', 1, 1);
  add('chat', 'gpt-4o-mini', Number(COUNT_MAX), 1);
  return cases;
}

// ---- periods ---------------------------------------------------------------
const DAY = 86400;
const INSTANT_END = Date.UTC(9999, 11, 1) / 1000;
const daysIn = (y, m) => new Date(Date.UTC(y, m + 1, 0)).getUTCDate(); // m: 0-based
const boundary = (y, m, anchor) => {
  // Date.UTC normalizes month overflow (m = 12 -> next January).
  const d = new Date(Date.UTC(y, m, 1));
  const yy = d.getUTCFullYear(), mm = d.getUTCMonth();
  return Date.UTC(yy, mm, Math.min(anchor, daysIn(yy, mm))) / 1000;
};

function expectedPeriod(instant, anchor) {
  if (!Number.isInteger(anchor) || anchor < 1 || anchor > 31) return { error: 'invalid_anchor_day' };
  if (instant < 0 || instant >= INSTANT_END) return { error: 'instant_out_of_range' };
  const date = new Date(instant * 1000);
  const y = date.getUTCFullYear(), m = date.getUTCMonth();
  let start = boundary(y, m, anchor);
  let end = boundary(y, m + 1, anchor);
  if (instant < start) {
    end = start;
    start = boundary(y, m - 1, anchor);
  }
  return { start, end };
}

function periodCases() {
  const cases = [];
  const add = (instant, anchor) => cases.push({ instant, anchor, expect: expectedPeriod(instant, anchor) });
  for (let k = 0; k < 1500; ++k) add(below(Date.UTC(2400, 0, 1) / 1000), 1 + below(31));
  // Month ends and leap days, every anchor from 27 on, and the first day.
  for (const [y, m, d] of [[2024, 1, 28], [2024, 1, 29], [2025, 1, 28], [2100, 1, 28], [2000, 1, 29],
                           [2024, 2, 1], [2025, 2, 31], [2025, 3, 30], [2025, 11, 31], [1970, 0, 1]]) {
    for (let anchor = 27; anchor <= 31; ++anchor) {
      const midnight = Date.UTC(y, m, d) / 1000;
      add(midnight, anchor);
      add(midnight - 1 < 0 ? 0 : midnight - 1, anchor);
      add(midnight + DAY - 1, anchor);
    }
  }
  for (let anchor = 1; anchor <= 31; ++anchor) add(INSTANT_END - 1, anchor);
  add(0, 0);
  add(0, 32);
  add(-1, 1);
  add(INSTANT_END, 1);
  return cases;
}

// ---- receipts --------------------------------------------------------------
const b64url = (buf) => Buffer.from(buf).toString('base64url');
const sha256b64url = (text) => b64url(crypto.createHash('sha256').update(text).digest());

function keyFromSeed(seed) {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const privateKey = crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const x = crypto.createPublicKey(privateKey).export({ format: 'jwk' }).x;
  // RFC 7638 thumbprint.
  const kid = sha256b64url(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`);
  return { privateKey, x, kid, seed: b64url(seed) };
}

const sign = (key, header, payload) => {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${b64url(crypto.sign(null, Buffer.from(input), key.privateKey))}`;
};
const jwksOf = (...keys) =>
  JSON.stringify({ keys: keys.map((k) => ({ kty: 'OKP', crv: 'Ed25519', x: k.x, kid: k.kid, alg: 'EdDSA', use: 'sig' })) });
const headerOf = (key) => JSON.stringify({ alg: 'EdDSA', kid: key.kid, typ: 'tokenmeter-receipt+jwt' });
const iso = (s) => new Date(s * 1000).toISOString().replace('.000Z', 'Z');

// The payload exactly as the server writes it: compact JSON, sorted keys.
function payloadOf(c) {
  const claims = {
    avatars_limit: c.avatars_limit, avatars_reserved: c.avatars_reserved, avatars_used: c.avatars_used,
    ...('catalog_version' in c ? { catalog_version: c.catalog_version } : {}),
    ...(c.event ? { event: c.event } : {}),
    iat: c.iat, iss: 'tokenmeter', period_end: iso(c.period_end), period_start: iso(c.period_start),
    plan: c.plan, prev: c.prev, seq: c.seq, sub: c.sub,
    tokens_limit: c.tokens_limit, tokens_reserved: c.tokens_reserved, tokens_used: c.tokens_used,
  };
  return JSON.stringify(claims);
}

function receiptCases() {
  const key = keyFromSeed(Buffer.alloc(32, 7));
  const other = keyFromSeed(Buffer.alloc(32, 8));
  const jwks = jwksOf(key);
  const cases = [];
  let prev = '';
  for (let seq = 1; seq <= 5; ++seq) {
    const claims = {
      sub: `user-${seq % 2}`, iat: 1764000000 + seq, seq, prev, plan: seq < 4 ? 'free' : 'pro',
      period_start: 1763942400, period_end: 1766534400,
      tokens_limit: seq < 4 ? 250000 : 10000000, tokens_used: 1000 * seq, tokens_reserved: 17 * seq,
      avatars_limit: seq < 4 ? 5 : 50, avatars_used: seq % 3, avatars_reserved: 0,
      event: seq === 5 ? '' : ['period_open', 'authorize', 'commit', 'plan_change'][seq - 1],
      // Changes that price name the price book version they used.
      ...(seq === 2 || seq === 3 ? { catalog_version: '2026-11-01' } : {}),
    };
    const jws = sign(key, headerOf(key), payloadOf(claims));
    cases.push({ name: `valid seq ${seq}`, jws, jwks, expect: { valid: true, claims, chain_digest: sha256b64url(jws.split('.')[1]) } });
    prev = sha256b64url(jws.split('.')[1]);
  }
  const good = cases[1].jws;
  const [h, p, s] = good.split('.');
  const flip = (text, i) => text.slice(0, i) + (text[i] === 'A' ? 'B' : 'A') + text.slice(i + 1);
  const invalid = (name, jws, code, keys = jwks) => cases.push({ name, jws, jwks: keys, expect: { valid: false, code } });
  invalid('payload changed', `${h}.${flip(p, 10)}.${s}`, 'signature_invalid');
  invalid('signature changed', `${h}.${p}.${flip(s, 5)}`, 'signature_invalid');
  invalid('signature truncated', `${h}.${p}.${s.slice(0, -2)}`, 'signature_invalid');
  invalid('unknown key', good, 'receipt_unknown_key', jwksOf(other));
  invalid('kid bound to another key', good, 'signature_invalid',
    JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: other.x, kid: key.kid, alg: 'EdDSA', use: 'sig' }] }));
  invalid('alg none', `${b64url('{"alg":"none"}')}.${p}.`, 'receipt_malformed');
  invalid('not a jws', 'hello', 'receipt_malformed');
  invalid('too large', 'a'.repeat(5000), 'receipt_too_large');
  invalid('extra header field', sign(key, JSON.stringify({ alg: 'EdDSA', kid: key.kid, typ: 'tokenmeter-receipt+jwt', jwk: {} }), payloadOf({ ...cases[0].expect.claims })), 'receipt_malformed');
  invalid('negative count', sign(key, headerOf(key), payloadOf({ ...cases[0].expect.claims, tokens_used: -5 })), 'receipt_claims_invalid');
  invalid('fractional count', sign(key, headerOf(key), payloadOf({ ...cases[0].expect.claims, tokens_used: 2.5 })), 'receipt_claims_invalid');
  invalid('catalog version not text', sign(key, headerOf(key), payloadOf({ ...cases[1].expect.claims, catalog_version: 7 })), 'receipt_claims_invalid');
  invalid('catalog version empty', sign(key, headerOf(key), payloadOf({ ...cases[1].expect.claims, catalog_version: '' })), 'receipt_claims_invalid');
  invalid('other issuer', sign(key, headerOf(key), payloadOf({ ...cases[0].expect.claims }).replace('"iss":"tokenmeter"', '"iss":"x"')), 'receipt_claims_invalid');
  return { cases, rfc8037: rfc8037Case() };
}

function rfc8037Case() {
  const seed = Buffer.from('nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A', 'base64url');
  const key = keyFromSeed(seed);
  const header = '{"alg":"EdDSA"}';
  const payload = 'Example of Ed25519 signing';
  return { seed: key.seed, x: key.x, kid: key.kid, header, payload, jws: sign(key, header, payload) };
}

const receipts = receiptCases();
const document = {
  generated_by: 'tests/vectors/generate_core_vectors.mjs',
  cost: costCases(),
  periods: periodCases(),
  receipts: receipts.cases,
  rfc8037: receipts.rfc8037,
};
process.stdout.write(JSON.stringify(document, null, 1) + '\n');
