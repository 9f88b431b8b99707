// In Chromium against `tokenmeter serve --demo --web-root build/web-demo`:
// the time from navigation to the first exact count in the demo's composer
// (the wasm and o200k_base fetched, compiled and loaded, the preview shown),
// on loopback and throttled to 10 Mbit/s with 40 ms RTT (Chrome DevTools
// network emulation), and the bytes on the wire for the .wasm and each
// tokenizer file (the encoded length: what compression leaves).
//
//   node bench/web/first_count.mjs [--runs 5]
// Prints a table; medians of the runs, each in a fresh browser context (cold cache).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { spawnListening } from '../../tests/support/spawn_listening.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const runs = Number(process.argv[process.argv.indexOf('--runs') + 1] || 5);
const binary = path.join(root, 'build/native/server/tokenmeter');
const webRoot = path.join(root, 'build/web-demo');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-first-count-'));
const server = await spawnListening(binary, ['serve', '--demo', '--listen', '127.0.0.1:0', '--web-root', webRoot], { cwd: dir });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });

const profiles = {
  loopback: null,
  '10 Mbit/s, 40 ms RTT': { offline: false, latency: 40, downloadThroughput: 10e6 / 8, uploadThroughput: 10e6 / 8 },
};

async function once(conditions) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  if (conditions) await cdp.send('Network.emulateNetworkConditions', conditions);
  const urls = new Map();
  const bytes = {};
  cdp.on('Network.responseReceived', (event) => urls.set(event.requestId, event.response.url));
  cdp.on('Network.loadingFinished', (event) => {
    const url = urls.get(event.requestId) ?? '';
    const name = /\/([^/?]+\.(?:wasm|tmbpe))/.exec(url)?.[1]?.replace(/-[A-Za-z0-9_-]{8}\./, '.');
    if (name) bytes[name] = event.encodedDataLength;
  });
  const start = Date.now();
  await page.goto(server.url, { waitUntil: 'commit' });
  await page.getByTestId('composer').fill('Hello! How many tokens is this?');
  await page.waitForFunction(() => document.querySelector('[data-testid="cost-preview"]')?.textContent?.trim().startsWith('≈'),
    null, { timeout: 60000 });
  const ms = Date.now() - start;
  await context.close();
  return { ms, bytes };
}

const median = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)];
console.log(`first exact count in the demo (Chromium ${browser.version()}, median of ${runs} cold loads)`);
for (const [label, conditions] of Object.entries(profiles)) {
  const results = [];
  for (let i = 0; i < runs; i += 1) results.push(await once(conditions));
  const sizes = Object.entries(results.at(-1).bytes).map(([name, n]) => `${name} ${(n / 1024).toFixed(0)} KB`).join(', ');
  console.log(`  ${label.padEnd(22)} ${median(results.map((r) => r.ms)).toString().padStart(6)} ms   on the wire: ${sizes}`);
}
await browser.close();
server.child.kill('SIGTERM');
fs.rmSync(dir, { recursive: true, force: true });
