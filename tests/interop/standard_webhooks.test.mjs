// Webhooks from a running `tokenmeter serve`, verified by an independent
// Standard Webhooks implementation (the `standardwebhooks` npm package, the
// spec authors' own) as an app's backend would: the headers and bytes a
// receiver captured, checked against the whsec_ secret, with the package's
// own timestamp tolerance. Also `tokenmeter webhooks list|replay`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { spawnListening } from '../support/spawn_listening.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tokenmeter = path.join(root, 'build/native/server/tokenmeter');
const serviceKey = 'interop-service-key-' + crypto.randomBytes(12).toString('hex');
const secret = 'whsec_' + crypto.randomBytes(32).toString('base64');
const deliveries = [];
let receiver;
let server;
let baseUrl;
let work;
let configFile;

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-webhooks-'));
  // The app's endpoint: records the raw bytes and headers of every delivery.
  receiver = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      deliveries.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(204).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const keygen = spawnSync(tokenmeter, ['keygen', '--out', path.join(work, 'key.json')]);
  assert.equal(keygen.status, 0, String(keygen.stderr));
  configFile = path.join(work, 'config.json');
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      db: `sqlite:${path.join(work, 'ledger.db')}`,
      jwt_secret: 'interop-jwt-secret-0123456789abcdefghijkl',
      service_keys: serviceKey,
      signing_key_file: path.join(work, 'key.json'),
      webhook_urls: [`http://127.0.0.1:${receiver.address().port}/hooks`],
      webhook_secret: secret,
    }),
  );
  const started = await spawnListening(tokenmeter, ['serve', '--config', configFile, '--listen', '127.0.0.1:0']);
  server = started.child;
  baseUrl = started.url;
});

after(() => {
  server?.kill('SIGTERM');
  receiver?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

async function record(user, tokens) {
  const response = await fetch(baseUrl + '/v1/usage/record', {
    method: 'POST',
    headers: {
      authorization: `Bearer ${serviceKey}`,
      'content-type': 'application/json',
      'idempotency-key': `r-${user}-${tokens}`,
    },
    body: JSON.stringify({ user_id: user, operation: 'chat', model: 'gpt-4o-mini', input_tokens: tokens, output_tokens: 0 }),
  });
  assert.equal(response.status, 200, await response.text());
}

async function waitForDeliveries(count) {
  const deadline = Date.now() + 20_000;
  while (deliveries.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(deliveries.length >= count, `expected ${count} deliveries, got ${deliveries.length}`);
}

function tokenmeterCli(...args) {
  return spawnSync(tokenmeter, args, { encoding: 'utf8' });
}

test('threshold alerts verify with the standardwebhooks package', async () => {
  const user = 'sw-' + crypto.randomBytes(4).toString('hex');
  // The free plan's 250,000 tokens: 80 % and then 100 %.
  await record(user, 200_000);
  await record(user, 50_000);
  await waitForDeliveries(2);
  const webhook = new Webhook(secret);
  const events = deliveries.map(({ headers, body }) => webhook.verify(body, headers));
  const thresholds = events.map((e) => e.data.threshold_percent).sort((a, b) => a - b);
  assert.deepEqual(thresholds, [80, 100]);
  for (const event of events) {
    assert.equal(event.type, 'usage.threshold');
    assert.equal(event.data.user_id, user);
    assert.match(event.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  }
  // The package refuses what was not signed so: another body, another id, another secret.
  const [first] = deliveries;
  assert.throws(() => webhook.verify(first.body.replace(user, user + 'x'), first.headers));
  assert.throws(() => webhook.verify(first.body, { ...first.headers, 'webhook-id': 'msg_other' }));
  assert.throws(() => new Webhook('whsec_' + crypto.randomBytes(32).toString('base64')).verify(first.body, first.headers));
});

test('webhooks list shows the outbox and replay sends an alert again with the same id', async () => {
  await waitForDeliveries(2);
  const listed = tokenmeterCli('webhooks', 'list', '--config', configFile);
  assert.equal(listed.status, 0, listed.stderr);
  const rows = listed.stdout.trim().split('\n').slice(1).map((line) => line.split('\t'));
  assert.equal(rows.length, 2, listed.stdout);
  for (const row of rows) {
    assert.equal(row[1], 'usage.threshold');
    assert.equal(row[3], 'delivered');
    assert.equal(row[4], '1');
  }
  const id = rows[0][0];
  const before = deliveries.length;
  const replayed = tokenmeterCli('webhooks', 'replay', id, '--config', configFile);
  assert.equal(replayed.status, 0, replayed.stderr);
  await waitForDeliveries(before + 1);
  const again = deliveries[deliveries.length - 1];
  assert.equal(again.headers['webhook-id'], id);
  const event = new Webhook(secret).verify(again.body, again.headers);
  assert.equal(event.type, 'usage.threshold');
  const unknown = tokenmeterCli('webhooks', 'replay', 'msg_unknown', '--config', configFile);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /no alert "msg_unknown" in the outbox/);
});
