// The gateway (DESIGN.md §12) as an app meets it: the official `openai` npm
// package pointed at tokenmeter's base URL, with a user's JWT as its API key
// (or the app's service key naming the user), in front of the OpenAI
// stand-in. Receipts are checked with `jose` against /v1/keys.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import * as jose from 'jose';
import { spawnListening } from '../support/spawn_listening.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tokenmeter = path.join(root, 'build/native/server/tokenmeter');
const standinBinary = path.join(root, 'build/native/tools/openai-standin/openai_standin');
const jwtSecret = 'interop-jwt-secret-0123456789abcdefghijkl';
const serviceKey = 'interop-service-key-' + crypto.randomBytes(12).toString('hex');
const upstreamKey = 'sk-upstream-' + crypto.randomBytes(8).toString('hex');
let standin;
let server;
let baseUrl;
let work;

before(async () => {
  const provider = await spawnListening(standinBinary, ['--listen', '127.0.0.1:0', '--api-key', upstreamKey]);
  standin = provider.child;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-gateway-'));
  const keygen = spawnSync(tokenmeter, ['keygen', '--out', path.join(work, 'key.json')]);
  assert.equal(keygen.status, 0, String(keygen.stderr));
  const catalog = JSON.parse(spawnSync('cat', [path.join(root, 'tools/demo/catalog.json')]).stdout);
  catalog.plans.find((plan) => plan.id === 'free').tokens_per_period = 20000;
  fs.writeFileSync(path.join(work, 'catalog.json'), JSON.stringify(catalog));
  fs.writeFileSync(
    path.join(work, 'config.json'),
    JSON.stringify({
      db: `sqlite:${path.join(work, 'ledger.db')}`,
      jwt_secret: jwtSecret,
      service_keys: serviceKey,
      signing_key_file: path.join(work, 'key.json'),
      catalog_file: path.join(work, 'catalog.json'),
      upstreams: [
        {
          models: ['gpt-4o', 'gpt-4o-mini', 'text-embedding-3-small'],
          base_url: `${provider.url}/v1`,
          api_key: upstreamKey,
          timeout_ms: 10000,
        },
      ],
    }),
  );
  const started = await spawnListening(tokenmeter, ['serve', '--config', path.join(work, 'config.json'), '--listen', '127.0.0.1:0']);
  server = started.child;
  baseUrl = started.url;
});

after(() => {
  server?.kill('SIGTERM');
  standin?.kill('SIGTERM');
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

async function userToken(sub) {
  return new jose.SignJWT({ role: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setAudience('authenticated')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(jwtSecret));
}

async function clientFor(sub) {
  return new OpenAI({ apiKey: await userToken(sub), baseURL: `${baseUrl}/v1`, maxRetries: 0 });
}

async function usedBy(sub) {
  const response = await fetch(`${baseUrl}/v1/users/${sub}/usage`, { headers: { authorization: `Bearer ${serviceKey}` } });
  return (await response.json()).tokens;
}

async function verified(receipt) {
  const jwks = jose.createLocalJWKSet(await (await fetch(`${baseUrl}/v1/keys`)).json());
  const { payload } = await jose.compactVerify(receipt, jwks, { algorithms: ['EdDSA'] });
  return JSON.parse(new TextDecoder().decode(payload));
}

test('a completion through the gateway is the provider answer, charged by its usage, with a receipt', async () => {
  const client = await clientFor('sdk-whole');
  const { data, response } = await client.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'three little words' }] })
    .withResponse();
  assert.equal(data.choices[0].message.content, 'Echo: three little words');
  assert.equal(response.headers.get('x-tokenmeter-usage-source'), 'provider');
  const claims = await verified(response.headers.get('x-tokenmeter-receipt'));
  assert.equal(claims.sub, 'sdk-whole');
  assert.equal(claims.tokens_used, 3 * data.usage.total_tokens); // gpt-4o is 3x
  assert.equal(claims.tokens_reserved, 0);
});

test('a stream through the gateway reads as OpenAI streams read, and settles exactly', async () => {
  const client = await clientFor('sdk-stream');
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'stream four words' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.choices.length > 0) text += chunk.choices[0].delta.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'Echo: stream four words');
  assert.ok(usage, 'the usage chunk the client asked for');
  const tokens = await usedBy('sdk-stream');
  assert.equal(tokens.used, usage.total_tokens);
  assert.equal(tokens.reserved, 0);
});

test('the receipt of a stream is its last comment, before [DONE]', async () => {
  const client = await clientFor('sdk-raw');
  const response = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'raw bytes' }], stream: true })
    .asResponse();
  const body = await response.text();
  const receipt = /^: X-Tokenmeter-Receipt: (\S+)$/m.exec(body)?.[1];
  assert.ok(receipt, body);
  assert.ok(body.indexOf(receipt) < body.indexOf('data: [DONE]'));
  const claims = await verified(receipt);
  assert.equal(claims.tokens_used, (await usedBy('sdk-raw')).used);
});

test('a call past the limit is an APIError 402 of type insufficient_quota, and nothing is forwarded', async () => {
  const client = await clientFor('sdk-poor');
  await assert.rejects(
    client.chat.completions.create({
      model: 'gpt-4o',
      max_tokens: 50000,
      messages: [{ role: 'user', content: 'too much' }],
    }),
    (error) => {
      assert.ok(error instanceof OpenAI.APIError);
      assert.equal(error.status, 402);
      assert.equal(error.type, 'insufficient_quota');
      assert.equal(error.code, 'limit_exceeded');
      return true;
    },
  );
  assert.equal((await usedBy('sdk-poor')).used, 0);
});

test('a wrong token is an AuthenticationError', async () => {
  const client = new OpenAI({ apiKey: 'not-a-token', baseURL: `${baseUrl}/v1`, maxRetries: 0 });
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    OpenAI.AuthenticationError,
  );
});

test('the app calls for a user with its service key and X-Tokenmeter-User; embeddings too', async () => {
  const client = new OpenAI({
    apiKey: serviceKey,
    baseURL: `${baseUrl}/v1`,
    maxRetries: 0,
    defaultHeaders: { 'X-Tokenmeter-User': 'sdk-app-user' },
  });
  const embedded = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one document', 'two'] });
  assert.equal(embedded.data.length, 2);
  assert.equal((await usedBy('sdk-app-user')).used, embedded.usage.prompt_tokens);
  const base64 = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'packed' });
  assert.equal(base64.data[0].embedding.length > 0, true);
});
