// CORS in Debian's Chromium (issue 13): a page on one origin (a plain node
// server on its own port) calls the API of a real `tokenmeter serve --demo`
// on another, with a user's bearer token, as a web app on its own domain
// would. With the page's origin in TOKENMETER_CORS_ORIGINS the browser lets
// the page read the answers (a preflighted GET and POST, a 401, the usage
// stream); with CORS off (the default) the browser refuses every one.
// Needs only the native build: `node --test tests/e2e/cors.test.mjs`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { spawnListening } from '../support/spawn_listening.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const binary = process.env.TM_BINARY ?? path.join(repoRoot, 'build/native/server/tokenmeter');
const chromiumPath = process.env.TM_CHROMIUM ?? '/usr/bin/chromium';

// The other origin: one blank page.
let pageServer;
let pageOrigin = '';
let browser;
const servers = [];

async function startApi(corsOrigins) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-e2e-cors-'));
  const env = { ...process.env };
  delete env.TOKENMETER_CORS_ORIGINS;
  if (corsOrigins) env.TOKENMETER_CORS_ORIGINS = corsOrigins;
  const started = await spawnListening(binary, ['serve', '--demo', '--listen', '127.0.0.1:0'], { cwd: dir, env });
  servers.push({ child: started.child, dir });
  const session = await (await fetch(`${started.url}/demo/session`)).json();
  return { url: started.url, token: session.access_token };
}

// What the page gets when it calls the API: each call's status and a field
// of its body, or the error the browser gave instead.
async function callFromPage(api) {
  const page = await browser.newPage();
  await page.goto(`${pageOrigin}/`);
  assert.notEqual(new URL(page.url()).origin, new URL(api.url).origin);
  const results = await page.evaluate(async ({ url, token }) => {
    const attempt = async (name, run) => {
      try {
        return [name, await run()];
      } catch (error) {
        return [name, `refused: ${error.name}`];
      }
    };
    const bearer = { Authorization: `Bearer ${token}` };
    return Object.fromEntries([
      await attempt('usage', async () => {
        const response = await fetch(`${url}/v1/me/usage`, { headers: bearer });
        return `${response.status} ${(await response.json()).plan}`;
      }),
      await attempt('unauthorized', async () => {
        const response = await fetch(`${url}/v1/me/usage`);
        return `${response.status} ${(await response.json()).error.code}`;
      }),
      await attempt('post', async () => {
        // A user token on a service route: preflighted (JSON and a bearer), answered 403.
        const response = await fetch(`${url}/v1/usage/record`, {
          method: 'POST',
          headers: { ...bearer, 'Content-Type': 'application/json', 'Idempotency-Key': 'e2e-cors-1' },
          body: '{}',
        });
        return `${response.status} ${(await response.json()).error.code}`;
      }),
      await attempt('stream', async () => {
        const controller = new AbortController();
        const response = await fetch(`${url}/v1/me/usage/stream`, { headers: bearer, signal: controller.signal });
        const reader = response.body.getReader();
        let text = '';
        while (!text.includes('event: usage')) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
        controller.abort();
        return `${response.status} ${text.includes('event: usage') ? 'event' : 'nothing'}`;
      }),
    ]);
  }, api);
  await page.close();
  return results;
}

before(async () => {
  pageServer = http.createServer((request, response) => {
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end('<!doctype html><title>another origin</title><p>an app on its own origin</p>');
  });
  await new Promise((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  pageOrigin = `http://127.0.0.1:${pageServer.address().port}`;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  pageServer?.close();
  for (const { child, dir } of servers) {
    child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('with the page origin allowed, the page reads replies, errors and the stream', async () => {
  const api = await startApi(`${pageOrigin},https://app.example.com`);
  const results = await callFromPage(api);
  assert.deepEqual(results, {
    usage: '200 free',
    unauthorized: '401 credentials_missing',
    post: '403 wrong_scope',
    stream: '200 event',
  });
});

test('with CORS off (the default), the browser refuses the page every answer', async () => {
  const api = await startApi(null);
  const results = await callFromPage(api);
  for (const [name, result] of Object.entries(results)) {
    assert.equal(result, 'refused: TypeError', name);
  }
  // The same calls from outside a browser are answered as ever.
  const direct = await fetch(`${api.url}/v1/me/usage`, { headers: { Authorization: `Bearer ${api.token}` } });
  assert.equal(direct.status, 200);
  assert.equal(direct.headers.get('access-control-allow-origin'), null);
});

test('with another origin allowed, this page is refused', async () => {
  const api = await startApi('https://app.example.com');
  const results = await callFromPage(api);
  for (const [name, result] of Object.entries(results)) {
    assert.equal(result, 'refused: TypeError', name);
  }
});
