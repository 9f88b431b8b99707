// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/)
// from the test vectors and the cases of the existing suites: valid inputs
// that reach deep into each parser, and near-valid ones one step off.
//
//   node tests/fuzz/make_corpus.mjs
//
// Deterministic: the same files on every run (fixed keys and instants; the
// JWKS keys are RFC 7517's example keys). Seeds are named `seed-*`; inputs
// that once crashed a target are named `crash-*`, committed by hand, and
// never touched here. The constants below must match the targets' own
// (the HS256 secret, the service key, the webhook secret, the instant).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { tokenizerCorpus } from '../vectors/tokenizer/corpus.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const vectors = path.join(here, '..', 'vectors');
const corpusDir = path.join(here, 'corpus');

const jwtSecret = 'fuzz-jwt-secret-of-32-characters';  // jwt_fuzz.cpp
const serviceKey = 'fuzz-service-key-0123456789';       // jwt_fuzz.cpp
const webhookSecret = 'fuzz-webhook-secret';            // lemonsqueezy_webhook_fuzz.cpp
const now = 1750000000;                                 // jwt_fuzz.cpp

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const json = (value) => JSON.stringify(value);
const readJson = (...parts) => JSON.parse(fs.readFileSync(path.join(vectors, ...parts), 'utf8'));

// Replaces the target's seed-* files with `seeds` ({name: text or Buffer}).
function writeSeeds(target, seeds) {
  const dir = path.join(corpusDir, target);
  fs.mkdirSync(dir, { recursive: true });
  for (const file of fs.readdirSync(dir)) {
    if (file.startsWith('seed-')) fs.unlinkSync(path.join(dir, file));
  }
  for (const [name, content] of Object.entries(seeds)) {
    fs.writeFileSync(path.join(dir, `seed-${name}`), content);
  }
  console.log(`${target}: ${Object.keys(seeds).length} seeds`);
}

function serviceRequests() {
  const chat = readJson('tokenizer', 'cookbook_chat.json').messages;
  const user = { user_id: 'user-1', operation: 'chat' };
  return {
    'authorize-input-tokens': json({ ...user, model: 'gpt-4o', input_tokens: 1200, max_output_tokens: 300 }),
    'authorize-text': json({ ...user, model: 'gpt-4o-mini', text: 'Summarize the ledger in one line.', max_output_tokens: 64 }),
    'authorize-text-estimate': json({ ...user, model: 'claude-3-7-sonnet', text: "It's 12:30 \u2014 caf\u00e9 \ud83c\udf75" }),
    'authorize-embedding': json({ user_id: 'svc:job|7', operation: 'embedding', model: 'text-embedding-3-small', text: 'a document' }),
    'authorize-messages': json({ ...user, model: 'gpt-4o', messages: chat, max_output_tokens: 500 }),
    'authorize-messages-parts': json({ ...user, model: 'claude-3-5-sonnet', messages: [
      { role: 'user', content: [{ type: 'text', text: 'Hello' }, { type: 'text', text: 'world' }] },
      { role: 'tool', tool_call_id: 'call_1', content: null },
    ] }),
    'authorize-avatar': json({ user_id: 'user@example.com', operation: 'avatar' }),
    'authorize-avatar-with-tokens': json({ user_id: 'user-1', operation: 'avatar', input_tokens: 1 }),
    'authorize-two-inputs': json({ ...user, model: 'gpt-4o', input_tokens: 1, text: 'x' }),
    'authorize-unknown-model': json({ ...user, model: 'gpt-5', input_tokens: 1 }),
    'authorize-messages-for-embedding': json({ user_id: 'u', operation: 'embedding', model: 'text-embedding-3-small', messages: [] }),
    'authorize-bad-message': json({ ...user, model: 'gpt-4o', messages: [{ role: 'user', content: 'x', tool_calls: [] }] }),
    'authorize-count-out-of-range': '{"user_id":"u","operation":"chat","model":"gpt-4o","input_tokens":1000000001}',
    'authorize-float-count': '{"user_id":"u","operation":"chat","model":"gpt-4o","input_tokens":1.5}',
    'authorize-negative-count': '{"user_id":"u","operation":"chat","model":"gpt-4o","input_tokens":-1}',
    'authorize-bad-user-id': json({ ...user, user_id: 'a b', model: 'gpt-4o', input_tokens: 1 }),
    'commit': json({ reservation_id: 'rsv_01JB6Y6T2W4Q9X0M3N5P7R8S9T', input_tokens: 1180, output_tokens: 240 }),
    'commit-avatar': json({ reservation_id: 'rsv_01JB6Y6T2W4Q9X0M3N5P7R8S9T' }),
    'commit-null-count': '{"reservation_id":"r","input_tokens":null,"output_tokens":0}',
    'commit-long-id': json({ reservation_id: 'r'.repeat(65), input_tokens: 1 }),
    'commit-token-classes': json({ reservation_id: 'rsv_01JB6Y6T2W4Q9X0M3N5P7R8S9T', input_tokens: 1180,
                                   cached_input_tokens: 1024, output_tokens: 240, reasoning_tokens: 192 }),
    'commit-part-over-whole': json({ reservation_id: 'r', input_tokens: 10, cached_input_tokens: 11, output_tokens: 0 }),
    'release': json({ reservation_id: 'rsv_01JB6Y6T2W4Q9X0M3N5P7R8S9T' }),
    'record': json({ user_id: 'user-1', operation: 'chat', model: 'gpt-4o-mini', input_tokens: 10, output_tokens: 20 }),
    'record-avatar': json({ user_id: 'user-1', operation: 'avatar' }),
    'record-token-classes': json({ user_id: 'user-1', operation: 'chat', model: 'gpt-4o', input_tokens: 10,
                                   cached_input_tokens: 4, output_tokens: 20, reasoning_tokens: 20 }),
    'unknown-field': json({ reservation_id: 'r', colour: 'blue' }),
    'malformed': '{"user_id":"user-1","operation":',
    'not-an-object': '["user-1","chat"]',
  };
}

function hs256Token(claims, header = { alg: 'HS256', typ: 'JWT' }, secret = jwtSecret) {
  const input = `${b64url(json(header))}.${b64url(typeof claims === 'string' ? claims : json(claims))}`;
  return `${input}.${b64url(crypto.createHmac('sha256', secret).update(input).digest())}`;
}

function jwt() {
  const claims = { sub: 'user-1', aud: 'authenticated', role: 'authenticated', iat: now - 60, exp: now + 3600 };
  // RFC 7517 appendix A.1: an EC P-256 and an RSA 2048 public key.
  const ec = { kty: 'EC', crv: 'P-256', x: 'MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4',
               y: '4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM', use: 'sig', kid: '1' };
  const rsa = { kty: 'RSA', alg: 'RS256', kid: '2011-04-29', e: 'AQAB',
                n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw' };
  const valid = hs256Token(claims);
  return {
    'bearer-valid': `Bearer ${valid}`,
    'bearer-lowercase-scheme': `bearer ${hs256Token({ ...claims, aud: ['other', 'authenticated'], exp: now + 0.5 })}`,
    'bearer-expired': `Bearer ${hs256Token({ ...claims, exp: now - 31 })}`,
    'bearer-not-yet-valid': `Bearer ${hs256Token({ ...claims, nbf: now + 31 })}`,
    'bearer-anon': `Bearer ${hs256Token({ ...claims, role: 'anon' })}`,
    'bearer-service-role': `Bearer ${hs256Token({ ...claims, role: 'service_role', sub: undefined })}`,
    'bearer-bad-sub': `Bearer ${hs256Token({ ...claims, sub: 'a b' })}`,
    'bearer-no-aud': `Bearer ${hs256Token({ ...claims, aud: undefined })}`,
    'bearer-wrong-secret': `Bearer ${hs256Token(claims, undefined, 'another-secret-of-32-characters!')}`,
    'bearer-alg-none': `Bearer ${b64url(json({ alg: 'none' }))}.${b64url(json(claims))}.`,
    'bearer-es256-kid': `Bearer ${hs256Token(claims, { alg: 'ES256', kid: '1' })}`,
    'bearer-jku': `Bearer ${hs256Token(claims, { alg: 'HS256', jku: 'https://attacker.example/jwks.json' })}`,
    'bearer-padded-signature': `Bearer ${valid}=`,
    'bearer-service-key': `Bearer ${serviceKey}`,
    'bare-token': valid,
    'claims-valid': json(claims),
    'claims-float-dates': json({ ...claims, exp: 1.0e30, nbf: -1.5 }),
    'claims-numeric-sub': json({ ...claims, sub: 12 }),
    'jwks-ec-rsa': json({ keys: [ec, rsa] }),
    'jwks-skipped-kinds': json({ keys: [{ kty: 'oct', k: 'AAAA', kid: 'h' }, { kty: 'OKP', crv: 'Ed25519', x: 'AAAA', kid: 'e' }, { ...ec, use: 'enc' }] }),
    'jwks-duplicate-kid': json({ keys: [ec, { ...rsa, kid: '1' }] }),
    'jwks-point-off-curve': json({ keys: [{ ...ec, y: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }] }),
    'jwks-short-modulus': json({ keys: [{ ...rsa, n: b64url(Buffer.alloc(128, 0xc5)) }] }),
  };
}

// Each delivery file is "X-Signature value\nraw body".
function lemonsqueezyWebhook() {
  const sign = (body) => crypto.createHmac('sha256', webhookSecret).update(body).digest('hex');
  const delivery = (body, signature = sign(body)) => `${signature}\n${body}`;
  const read = (name) => fs.readFileSync(path.join(vectors, 'lemonsqueezy', name), 'utf8');
  const created = read('webhook_subscription_created.json');
  const parsed = JSON.parse(created);
  const variant = (change) => {
    const copy = structuredClone(parsed);
    change(copy);
    return json(copy);
  };
  return {
    'subscription-created': delivery(created),
    'subscription-cancelled': delivery(read('webhook_subscription_updated_cancelled.json')),
    'payment-success': delivery(read('webhook_subscription_payment_success.json')),
    'subscription-paused-free': delivery(variant((d) => {
      d.meta.event_name = 'subscription_paused';
      d.data.attributes.status = 'paused';
      d.data.attributes.pause = { mode: 'free', resumes_at: null };
      d.meta.custom_data = { user_id: 12345 };
    })),
    'subscription-numeric-ids': delivery(variant((d) => {
      d.data.id = 98765;
      d.data.attributes.variant_id = '555';
      d.data.attributes.ends_at = '2026-01-01T00:00:00.000000Z';
      d.data.attributes.updated_at = '2025-06-15T10:15:31.123456+02:00';
    })),
    'subscription-bad-timestamp': delivery(variant((d) => { d.data.attributes.renews_at = '2025-02-30T00:00:00Z'; })),
    'order-created': delivery(json({ meta: { event_name: 'order_created', custom_data: { user_id: 'user-1' } },
                                     data: { type: 'orders', id: '1234567', attributes: { status: 'paid' } } })),
    'ignored-event': delivery(json({ meta: { event_name: 'license_key_created', webhook_id: 'w'.repeat(80) }, data: [] })),
    'uppercase-signature': delivery(created, sign(created).toUpperCase()),
    'wrong-signature': delivery(created, sign(`${created} `)),
    'no-signature-header': `\n${created}`,
    'not-json': delivery('subscription_created'),
  };
}

function receipt() {
  const core = readJson('core_vectors.json');
  const seeds = {};
  const payloadOf = (jws) => Buffer.from(jws.split('.')[1] ?? '', 'base64url');
  core.receipts.forEach((c, i) => {
    const name = c.name.replace(/[^a-z0-9]+/gi, '-');
    seeds[`jws-${String(i).padStart(2, '0')}-${name}`] = c.jws;
    // The claims alone, for the target to sign (the signed path).
    if (c.expect.valid) seeds[`payload-${String(i).padStart(2, '0')}-${name}`] = payloadOf(c.jws);
  });
  seeds['payload-with-offsets'] = json({
    iss: 'tokenmeter', sub: 'user-1', iat: 1764000001, seq: 1, prev: '', plan: 'free',
    period_start: '2025-11-24T01:00:00.5+01:00', period_end: '2025-12-24T00:00:00z',
    tokens_limit: 250000, tokens_used: 0, tokens_reserved: 0, avatars_limit: 5, avatars_used: 0, avatars_reserved: 0,
  });
  seeds['jwks'] = core.receipts[0].jwks;
  seeds['jwks-mixed'] = json({ keys: [{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' },
                                      { kty: 'OKP', crv: 'Ed25519', x: core.rfc8037.x, kid: core.rfc8037.kid }] });
  seeds['rfc8037-jws'] = core.rfc8037.jws;
  return seeds;
}

function tokenizer() {
  const cases = tokenizerCorpus({ windows: 0, fuzz: 6 });
  const seeds = {};
  let passage = 0;
  for (const c of cases) {
    if (c.group === 'passage') seeds[`passage-${String(passage++).padStart(2, '0')}`] = c.text;
  }
  seeds['edge-cases'] = cases.filter((c) => c.group === 'edge').map((c) => c.text).join('|');
  cases.filter((c) => c.group === 'fuzz').forEach((c, i) => { seeds[`palette-${i}`] = c.text; });
  cases.filter((c) => c.group === 'long' && Buffer.byteLength(c.text) <= 4096).slice(0, 3)
    .forEach((c, i) => { seeds[`long-piece-${i}`] = c.text; });
  // Pieces far over 128 bytes take the backtracking encoder.
  seeds['long-letters'] = `x${'ab'.repeat(1500)}`;
  seeds['long-spaces'] = `a${' '.repeat(600)}b\n\n\n${'\u00e9'.repeat(400)}`;
  // Invalid UTF-8: each must be an error, at the right offset.
  seeds['invalid-continuation'] = Buffer.from([0x61, 0x80, 0x62]);
  seeds['invalid-overlong'] = Buffer.from([0xc0, 0xaf]);
  seeds['invalid-surrogate'] = Buffer.from([0x61, 0xed, 0xa0, 0x80]);
  seeds['invalid-truncated'] = Buffer.from([0x68, 0x69, 0xf0, 0x9f, 0x98]);
  seeds['invalid-above-unicode'] = Buffer.from([0xf4, 0x90, 0x80, 0x80]);
  seeds['invalid-after-text'] = Buffer.concat([Buffer.from('caf\u00e9 \u6771\u4eac '), Buffer.from([0xff])]);
  return seeds;
}

function catalog() {
  // The default catalog (core/src/catalog.cpp), and the edits the catalog suite makes.
  const base = {
    version: '2026-11-01',
    operations: [{ id: 'chat' }, { id: 'embedding' }, { id: 'avatar', tokens_flat: 10000, avatars: 1 }],
    models: [
      { id: 'gpt-4o-mini', multiplier: '1', tokenizer: 'o200k_base', operations: ['chat'] },
      { id: 'gpt-4o', multiplier: '3', tokenizer: 'o200k_base', operations: ['chat'] },
      { id: 'claude-3-5-sonnet', multiplier: '2', tokenizer: 'estimate', operations: ['chat'] },
      { id: 'claude-3-7-sonnet', multiplier: '5/2', tokenizer: 'estimate', operations: ['chat'] },
      { id: 'text-embedding-3-small', multiplier: '1', tokenizer: 'cl100k_base', operations: ['embedding'] },
    ],
    plans: [{ id: 'free', tokens_per_period: 250000, avatars_per_period: 5 },
            { id: 'pro', tokens_per_period: 10000000, avatars_per_period: 50 }],
  };
  const edit = (change) => {
    const copy = structuredClone(base);
    change(copy);
    return JSON.stringify(copy, null, 2);
  };
  return {
    'default': JSON.stringify(base, null, 2),
    'served-form': edit((c) => c.models.forEach((m) => { m.exact = m.tokenizer !== 'estimate'; })),
    'multipliers': edit((c) => {
      c.models[0].multiplier = '2.5';
      c.models[1].multiplier = 3;
      c.models[2].multiplier = '1000/999';
      c.models[3].multiplier = '0.125';
      c.models.push({ id: 'both', multiplier: '7/3', tokenizer: 'cl100k_base', operations: ['embedding', 'chat'] });
    }),
    'weights': edit((c) => {
      c.models[1].weights = { input: '1', cached_input: '1/2', output: '4', reasoning: 4 };
      c.models[0].weights = { cached_input: '0' };
    }),
    'weights-unknown-class': edit((c) => { c.models[1].weights = { cache_write: '2' }; }),
    'weights-zero-output': edit((c) => { c.models[1].weights = { output: '0' }; }),
    'multiplier-float': edit((c) => { c.models[0].multiplier = 2.5; }),
    'multiplier-zero': edit((c) => { c.models[0].multiplier = '0/5'; }),
    'multiplier-large': edit((c) => { c.models[0].multiplier = '1001/1'; }),
    'exact-disagrees': edit((c) => { c.models[2].exact = true; }),
    'duplicate-model': edit((c) => { c.models[1].id = 'gpt-4o-mini'; }),
    'undefined-operation': edit((c) => { c.operations.splice(1, 1); }),
    'no-pro-plan': edit((c) => { c.plans.pop(); }),
    'negative-plan': edit((c) => { c.plans[0].tokens_per_period = -1; }),
    'unknown-field': edit((c) => { c.colour = 1; }),
    'bad-id': edit((c) => { c.models[0].id = 'GPT 4o'; }),
    'avatar-without-avatars': edit((c) => { c.operations[2].avatars = 0; }),
    'largest-counts': edit((c) => {
      c.plans[1].tokens_per_period = 9007199254740991;
      c.operations[2].tokens_flat = 9007199254740991;
    }),
  };
}

function config() {
  const full = {
    db: 'sqlite:./tokenmeter.db', listen: '127.0.0.1:8787', jwt_secret: 'x'.repeat(32),
    service_keys: ['service-key-0123456789abcdef'], signing_key_file: 'signing-key.json',
    jwks: 'https://example.supabase.co/auth/v1/.well-known/jwks.json', catalog_file: 'catalog.json',
    reservation_ttl_seconds: 600, late_commit_grace_seconds: 86400, body_bytes_max: 4194304,
    http_threads: 64, http_queue_max: 1024, http_connections_max: 8192, http_request_timeout_ms: 10000,
    http_idle_timeout_ms: 5000, streams_max: 4096, streams_per_user_max: 8,
    rate_limit_user_per_second: 20, rate_limit_user_burst: 60, rate_limit_service_per_second: 0,
    rate_limit_service_burst: 100000, rate_limit_address_per_second: 50, rate_limit_address_burst: 200,
    sse_heartbeat_seconds: 15, lemonsqueezy_api_base: 'https://api.lemonsqueezy.com', lemonsqueezy_api_key: 'k',
    lemonsqueezy_store_id: '1', lemonsqueezy_pro_variant_id: '2', lemonsqueezy_webhook_secret: 's',
    lemonsqueezy_timeout_ms: 5000,
  };
  return {
    'full': JSON.stringify(full, null, 2),
    'minimal': json({ db: 'postgres://tm@localhost/tm', listen: '[::1]:0' }),
    'service-keys-text': json({ service_keys: ' key-a-0123456789abcdefghij , ,key-b-0123456789abcdefghij\t' }),
    'integers-as-text': json({ http_threads: '8', reservation_ttl_seconds: '86400' }),
    'integer-out-of-range': json({ http_threads: 1025 }),
    'integer-negative': json({ streams_max: -1 }),
    'integer-float': json({ body_bytes_max: 1e6 }),
    'list-with-comma': json({ service_keys: ['a,b'] }),
    'unknown-setting': json({ lisen: '127.0.0.1:1' }),
    'bad-listen': json({ ...full, listen: '127.0.0.1:65536' }),
    'short-secret': json({ ...full, jwt_secret: 'short' }),
    'not-an-object': '"db"',
  };
}

function requestHead() {
  const chunkedHead = 'POST /v1/usage/commit HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n';
  return {
    'get': 'GET /v1/me/usage HTTP/1.1\r\nHost: 127.0.0.1:8787\r\nAuthorization: Bearer x\r\n\r\n',
    'post-length': 'POST /v1/usage/authorize HTTP/1.1\r\nHost: a\r\ncontent-LENGTH:  12 \r\nContent-Type: application/json\r\n\r\n{"a":"bcde"}',
    'post-expect': 'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc',
    'post-chunked': `${chunkedHead}4\r\nabcd\r\n0\r\n\r\n`,
    'post-chunked-extensions-trailers': `${chunkedHead}A;name=value\r\n0123456789\r\n1\r\nx\r\n0;last\r\nX-Checksum: 1\r\nX-More: 2\r\n\r\n`,
    'post-chunked-pipelined': `${chunkedHead}3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n`,
    'http10-keep-alive': 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n',
    'connection-close-list': 'GET * HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n',
    'identity-coding': 'POST / HTTP/1.1\r\nContent-Encoding: identity\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nhi',
    'bare-lf': 'GET / HTTP/1.1\nHost: a\n\n',
    'folded-line': 'GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n',
    'length-and-chunked': 'POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
    'two-lengths': 'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    'gzip-transfer-coding': 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
    'compressed-body': 'POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\n',
    'body-over-cap': 'POST / HTTP/1.1\r\nContent-Length: 4194305\r\n\r\n',
    'version-2': 'GET / HTTP/2.0\r\n\r\n',
    'target-not-a-path': 'GET http://x/ HTTP/1.1\r\n\r\n',
    'long-target-arriving': `GET /${'a'.repeat(120)}`,
    'many-headers': `GET / HTTP/1.1\r\n${Array.from({ length: 6 }, (_, i) => `X-${i}: 1\r\n`).join('')}\r\n`,
    'chunked-body': '5\r\nhello\r\n6;ext\r\n world\r\n0\r\n\r\n',
    'chunked-body-uppercase-hex': '1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n',
    'chunked-body-no-crlf-after-data': '3\r\nabcd\r\n0\r\n\r\n',
    'chunked-body-too-large': '7fffffff\r\n',
    'chunked-body-bare-lf': '3\nabc\n0\n\n',
  };
}

writeSeeds('service_requests', serviceRequests());
writeSeeds('jwt', jwt());
writeSeeds('lemonsqueezy_webhook', lemonsqueezyWebhook());
writeSeeds('receipt', receipt());
writeSeeds('tokenizer', tokenizer());
writeSeeds('catalog', catalog());
writeSeeds('config', config());
writeSeeds('request_head', requestHead());
