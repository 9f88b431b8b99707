// The demo in Debian's Chromium, driven by playwright-core: what a user of
// the app sees, step by step, against a real `tokenmeter serve --demo`
// serving the built web-demo. A screenshot of every step goes to build/e2e/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const binary = process.env.TM_BINARY ?? path.join(repoRoot, 'build/native/server/tokenmeter');
const standinBinary = process.env.TM_STANDIN_BINARY ?? path.join(repoRoot, 'build/native/tools/lemonsqueezy-standin/lemonsqueezy_standin');
const webhookSecret = 'e2e-webhook-secret-0123456789abcdef';
const webRoot = process.env.TM_WEB_ROOT ?? path.join(repoRoot, 'build/web-demo');
const shots = path.join(repoRoot, 'build/e2e');
const chromiumPath = process.env.TM_CHROMIUM ?? '/usr/bin/chromium';
const timeout = 15000;

const freePort = () => new Promise((resolve, reject) => {
  const server = net.createServer().once('error', reject);
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});

async function waitUntilUp(url, child, log) {
  for (let i = 0; i < 100; i += 1) {
    if (child.exitCode !== null) throw new Error(`${url}: exited:\n${log()}`);
    try {
      if ((await fetch(url)).status < 500) return;
    } catch { /* not up yet */ }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not come up:\n${log()}`);
}

// One `tokenmeter serve --demo` in a temporary directory, restartable on the
// same port, with the LemonSqueezy stand-in beside it.
class DemoServer {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-e2e-'));
  child = null;
  standin = null;
  log = '';
  async startStandin() {
    this.standinPort = await freePort();
    this.standin = spawn(standinBinary, ['--listen', `127.0.0.1:${this.standinPort}`,
      '--webhook-url', `${this.url}/v1/webhooks/lemonsqueezy`, '--webhook-secret', webhookSecret, '--store-id', '1', '--variant-id', '1'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    this.standin.stderr.on('data', (chunk) => (log += chunk));
    await waitUntilUp(`http://127.0.0.1:${this.standinPort}/`, this.standin, () => log);
  }
  async start() {
    this.port ??= await freePort();
    if (!this.standin) await this.startStandin();
    this.child = spawn(binary, ['serve', '--demo', '--listen', `127.0.0.1:${this.port}`, '--web-root', webRoot],
      { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env,
        LEMONSQUEEZY_API_BASE: `http://127.0.0.1:${this.standinPort}`, LEMONSQUEEZY_API_KEY: 'e2e-key',
        LEMONSQUEEZY_STORE_ID: '1', LEMONSQUEEZY_PRO_VARIANT_ID: '1', LEMONSQUEEZY_WEBHOOK_SECRET: webhookSecret } });
    this.child.stderr.on('data', (chunk) => (this.log += chunk));
    for (let i = 0; i < 100; i += 1) {
      if (this.child.exitCode !== null) throw new Error(`tokenmeter serve exited:\n${this.log}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch { /* not up yet */ }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`tokenmeter serve did not come up:\n${this.log}`);
  }
  get url() { return `http://127.0.0.1:${this.port}`; }
  // The server goes away at once (SIGKILL): what a crash or a cut network looks like to the page.
  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }
}

const server = new DemoServer();
let browser;
let page;

const testId = (id) => page.getByTestId(id);
const textOf = async (id) => (await testId(id).textContent())?.trim();
async function shot(name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}
// Waits until the element's text satisfies `predicate(text, arg)`; the
// predicate runs in the page, so it may use only its arguments.
async function waitForText(id, predicate, what, arg = null) {
  await page.waitForFunction(
    ([selector, source, value]) => {
      const text = document.querySelector(selector)?.textContent?.trim() ?? '';
      return new Function('text', 'arg', `return (${source})(text, arg)`)(text, value);
    },
    [`[data-testid="${id}"]`, predicate.toString(), arg],
    { timeout },
  ).catch((error) => { throw new Error(`${what}: ${error.message}`); });
}

before(async () => {
  fs.mkdirSync(shots, { recursive: true });
  assert.ok(fs.existsSync(path.join(webRoot, 'index.html')), `${webRoot} is not built (make web-demo)`);
  await server.start();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
});

after(async () => {
  await browser?.close();
  await server.stop();
  server.standin?.kill('SIGKILL');
  fs.rmSync(server.dir, { recursive: true, force: true });
});

test('the demo, as a user sees it', async (t) => {
  await t.test('first load shows the free plan with 250,000 tokens, verified and live', async () => {
    await page.goto(server.url);
    await waitForText('plan', (text) => text === 'free', 'plan');
    await waitForText('tokens-remaining', (text) => text === '250,000 left', 'tokens left');
    await testId('verified-badge').waitFor({ timeout });
    await testId('live-indicator').waitFor({ timeout });
    assert.equal(await textOf('avatars-remaining'), '5 left');
    assert.match(await textOf('period-end'), /^Period ends /);
    await shot('01-first-load');
  });

  await t.test('typing changes the cost preview', async () => {
    await testId('model-picker').selectOption('gpt-4o');
    await testId('composer').fill('Hello!');
    await waitForText('cost-preview', (text) => text.startsWith('≈'), 'a preview');
    const short = await textOf('cost-preview');
    assert.match(short, /^≈ [\d,]+ tokens × 3 = [\d,]+ · [\d,]+ left/);
    await testId('composer').fill('Hello! Please explain how token metering works, in three short paragraphs, with an example.');
    await waitForText('cost-preview', (text) => text.startsWith('≈'), 'a preview');
    const longer = await textOf('cost-preview');
    assert.notEqual(longer, short);
    const [raw, charged] = longer.match(/≈ ([\d,]+) tokens × 3 = ([\d,]+)/).slice(1).map((n) => Number(n.replaceAll(',', '')));
    assert.equal(charged, raw * 3);
    await testId('model-picker').selectOption('claude-3-7-sonnet');
    await waitForText('cost-preview', (text) => text.includes('× 2.5'), 'the Claude multiplier');
    await testId('model-picker').selectOption('gpt-4o');
    await shot('02-preview');
  });

  let leftAfterSend;
  await t.test('a send moves the bar and the verified badge stays', async () => {
    await testId('send').click();
    // The reservation moves the bar first; the commit settles it (reply budget returned).
    await waitForText('tokens-remaining', (text) => text !== '250,000 left', 'the bar to move');
    await page.getByText('charged').first().waitFor({ timeout });
    await page.waitForFunction(() => document.querySelector('[data-testid="composer"]').value === '', null, { timeout });
    await waitForText('tokens', (text) => !text.includes('reserved'), 'the reservation to settle');
    await testId('verified-badge').waitFor({ timeout });
    leftAfterSend = await textOf('tokens-remaining');
    assert.match(leftAfterSend, /^24\d,\d{3} left$/);
    await shot('03-sent');
  });

  await t.test('the avatar button spends from the avatar quota', async () => {
    await testId('avatar-button').click();
    await waitForText('avatars-remaining', (text) => text === '4 left', 'an avatar spent');
    await waitForText('avatars', (text) => !text.includes('reserved'), 'the avatar to be committed');
    await testId('verified-badge').waitFor({ timeout });
    leftAfterSend = await textOf('tokens-remaining');
    await shot('04-avatar');
  });

  await t.test('the usage page charts by day and by model and lists the events', async () => {
    await testId('nav-usage').click();
    await waitForText('chart-model', (text) => text.includes('gpt-4o'), 'the model chart');
    await waitForText('events', (text) => text.includes('avatar') && text.includes('chat'), 'the event list');
    assert.match(await textOf('chart-day'), /\d{4}-\d{2}-\d{2}/);
    await shot('05-usage');
    await page.goto(`${server.url}/#/`);
    await waitForText('tokens-remaining', (text, left) => text === left, 'the balance after navigating back', leftAfterSend);
  });

  await t.test('what does not fit is refused with the upgrade prompt', async () => {
    await testId('composer').fill('lorem ipsum dolor sit amet '.repeat(20000));
    await testId('upgrade-prompt').waitFor({ timeout });
    assert.equal(await testId('send').isDisabled(), true);
    assert.match(await textOf('upgrade-prompt'), /only [\d,]+ are left on the free plan/);
    assert.match(await textOf('cost-preview'), / · [\d,]+ short/);
    await shot('06-over-limit');
  });

  await t.test('upgrade: checkout through the stand-in turns the plan to pro live, without a reload', async () => {
    const [checkout] = await Promise.all([
      page.context().waitForEvent('page', { timeout }),
      testId('upgrade-prompt').getByTestId('upgrade-button').click(),
    ]);
    await checkout.waitForURL(/\/checkout\//, { timeout });
    await checkout.locator('#pay').waitFor({ timeout });
    await checkout.screenshot({ path: path.join(shots, '07-checkout.png'), fullPage: true });
    await page.evaluate(() => { window.__notReloaded = true; });
    await checkout.locator('#pay').click();
    await waitForText('plan', (text) => text === 'pro', 'the plan to turn pro');
    assert.equal(await page.evaluate(() => window.__notReloaded), true);
    await waitForText('tokens-remaining', (text) => /^9,\d{3},\d{3} left$/.test(text), 'the pro limit');
    await testId('verified-badge').waitFor({ timeout });
    assert.equal(await testId('upgrade-prompt').count(), 0);
    assert.equal(await testId('send').isDisabled(), false);
    await checkout.close();
    await shot('08-pro');
    await testId('composer').fill('');
    leftAfterSend = await textOf('tokens-remaining');
  });

  await t.test('the server going away shows offline with the last verified balance', async () => {
    await server.stop();
    await testId('offline-indicator').waitFor({ timeout });
    assert.equal(await textOf('tokens-remaining'), leftAfterSend);
    await testId('verified-badge').waitFor({ timeout });
    assert.equal(await textOf('plan'), 'pro');
    assert.match(await textOf('freshness'), /^Last verified balance as of/);
    await testId('composer').fill('Still counting offline?');
    await waitForText('cost-preview', (text) => text.startsWith('≈'), 'an offline estimate');
    await shot('09-offline');
  });

  await t.test('restarting the server brings the live view back', async () => {
    await server.start();
    await testId('live-indicator').waitFor({ timeout: 20000 });
    assert.equal(await testId('offline-indicator').count(), 0);
    assert.equal(await textOf('tokens-remaining'), leftAfterSend);
    await shot('10-back-live');
  });

  await t.test('a second tab shares the one stream and the state', async () => {
    const liveStreams = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(text.split('\n').find((line) => line.startsWith('tokenmeter_live_streams')).split(/\s+/)[1]);
    };
    const second = await page.context().newPage();
    await second.goto(server.url);
    await second.getByTestId('live-indicator').waitFor({ timeout });
    assert.equal(await second.getByTestId('tokens-remaining').textContent(), leftAfterSend);
    assert.equal(await liveStreams(), 1);
    await second.getByTestId('avatar-button').click();
    await waitForText('avatars-remaining', (text) => text === '48 left', 'the first tab to see the second tab\'s avatar');
    await second.screenshot({ path: path.join(shots, '11-second-tab.png'), fullPage: true });
    await second.close();
  });
});
