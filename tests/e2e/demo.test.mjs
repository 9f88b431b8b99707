// The demo in Debian's Chromium, driven by playwright-core: what a user of
// the app sees, step by step, against a real `tokenmeter serve --demo`
// serving the built web-demo. A screenshot of every step goes to build/e2e/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { spawnListening } from '../support/spawn_listening.mjs';
import { demoCatalogFile, standinSaleArgs } from '../support/demo_billing.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const binary = process.env.TM_BINARY ?? path.join(repoRoot, 'build/native/server/tokenmeter');
const standinBinary = process.env.TM_STANDIN_BINARY ?? path.join(repoRoot, 'build/native/tools/lemonsqueezy-standin/lemonsqueezy_standin');
const modelsBinary = process.env.TM_OPENAI_STANDIN_BINARY ?? path.join(repoRoot, 'build/native/tools/openai-standin/openai_standin');
const webhookSecret = 'e2e-webhook-secret-0123456789abcdef';
const webRoot = process.env.TM_WEB_ROOT ?? path.join(repoRoot, 'build/web-demo');
const shots = path.join(repoRoot, 'build/e2e');
const chromiumPath = process.env.TM_CHROMIUM ?? '/usr/bin/chromium';
const timeout = 15000;

// One `tokenmeter serve --demo` in a temporary directory, restartable on the
// same port, with the LemonSqueezy stand-in beside it, both selling what
// `make demo` sells (tests/support/demo_billing.mjs). Both take a free port
// (port 0) and say which on stdout; the stand-in starts first, and learns
// where to send webhooks once the server has said where it listens.
class DemoServer {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-e2e-'));
  child = null;
  standin = null;
  port = 0;
  async startStandin() {
    const started = await spawnListening(standinBinary, ['--listen', '127.0.0.1:0',
      '--webhook-secret', webhookSecret, ...standinSaleArgs]);
    this.standin = started.child;
    this.standinUrl = started.url;
    // The chat's models: the OpenAI stand-in behind the gateway, streaming
    // slowly enough that a reply is seen growing.
    const models = await spawnListening(modelsBinary, ['--listen', '127.0.0.1:0', '--chunk-delay-ms', '30']);
    this.models = models.child;
    const catalog = JSON.parse(fs.readFileSync(demoCatalogFile, 'utf8'));
    fs.writeFileSync(path.join(this.dir, 'upstreams.json'),
      JSON.stringify([{ models: catalog.models.map((m) => m.id), base_url: `${models.url}/v1` }]));
  }
  // The first start takes a free port; a restart binds the same one again,
  // since the page and the stand-in hold the URL.
  async start() {
    if (!this.standin) await this.startStandin();
    const started = await spawnListening(binary, ['serve', '--demo', '--listen', `127.0.0.1:${this.port}`, '--web-root', webRoot], {
      cwd: this.dir,
      env: { ...process.env, TOKENMETER_CATALOG_FILE: demoCatalogFile,
        TOKENMETER_UPSTREAMS_FILE: path.join(this.dir, 'upstreams.json'),
        LEMONSQUEEZY_API_BASE: this.standinUrl, LEMONSQUEEZY_API_KEY: 'e2e-key',
        LEMONSQUEEZY_STORE_ID: '1', LEMONSQUEEZY_PRO_VARIANT_ID: '1', LEMONSQUEEZY_WEBHOOK_SECRET: webhookSecret },
    });
    this.child = started.child;
    this.port = started.port;
    const told = await fetch(`${this.standinUrl}/_standin/webhook-url`, {
      method: 'PUT', body: JSON.stringify({ url: `${this.url}/v1/webhooks/lemonsqueezy` }),
    });
    assert.ok(told.ok, `the stand-in refused the webhook URL: ${told.status}`);
  }
  get url() { return `http://127.0.0.1:${this.port}`; }
  // A call of the app's backend (the service key `serve --demo` wrote).
  async service(method, route, body) {
    const key = fs.readFileSync(path.join(this.dir, '.tokenmeter-demo', 'service-key'), 'utf8').trim();
    const response = await fetch(`${this.url}${route}`, {
      method,
      headers: { Authorization: `Bearer ${key}`, 'Idempotency-Key': crypto.randomUUID(), 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.ok(response.ok, `${method} ${route}: ${response.status} ${await response.clone().text()}`);
    return response.json();
  }
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
// Every uncaught error in the page: a test at the end fails if there is any,
// so a broken render cannot hide behind assertions that still pass.
const pageErrors = [];

const testId = (id) => page.getByTestId(id);
const textOf = async (id) => (await testId(id).textContent())?.trim();
const countIn = (text) => Number(text.replace(/\D/g, ''));
// axe-core on the page as it is: nothing serious or critical.
async function assertAccessible(where) {
  await page.addScriptTag({ path: axePath });
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] }))
    .violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) })));
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(serious, [], `${where}: ${JSON.stringify(serious, null, 1)}`);
}
// Clicks `button` (which opens the payment provider in a new tab) and pays
// there with the stand-in's Pay button; returns once the webhooks were sent.
async function payInNewTab(button, shotName) {
  const [checkout] = await Promise.all([page.context().waitForEvent('page', { timeout }), button.click()]);
  await checkout.waitForURL(/\/checkout\//, { timeout });
  await checkout.locator('#pay').waitFor({ timeout });
  await checkout.screenshot({ path: path.join(shots, `${shotName}.png`), fullPage: true });
  await checkout.locator('#pay').click();
  await checkout.waitForLoadState();
  await checkout.close();
}
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
  page.on('pageerror', (error) => {
    console.error('page error:', error.message);
    pageErrors.push(error.stack ?? error.message);
  });
});

after(async () => {
  await browser?.close();
  await server.stop();
  server.standin?.kill('SIGKILL');
  server.models?.kill('SIGKILL');
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
    // The reply streams in from the model behind the gateway, and is charged when it ends.
    await page.getByText('Echo: Hello! Please explain how token metering works').first().waitFor({ timeout });
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

  await t.test('a document is chunked, counted exactly and priced in the browser, then embedded for that count', async () => {
    await testId('nav-documents').click();
    const paragraph = 'Token metering charges each operation by the model used. '.repeat(30);
    const document = Array.from({ length: 6 }, (_, i) => `## Part ${i + 1}\n\n${paragraph}`).join('\n\n') + '\n\n' + '東京 🚀 '.repeat(400);
    await testId('doc-file').setInputFiles({ name: 'notes.md', mimeType: 'text/markdown', buffer: Buffer.from(document) });
    await waitForText('doc-preview', (text) => /^\d+ chunks · /.test(text), 'the document preview');
    const preview = await textOf('doc-preview');
    const [chunks, tokens, charged] = preview.match(/^(\d+) chunks · ([\d,]+) tokens \(cl100k_base, exact\) · ≈ ([\d,]+) tokens charged/)
      .slice(1).map((n) => Number(n.replaceAll(',', '')));
    assert.ok(chunks >= 3, preview);
    assert.equal(charged, tokens); // text-embedding-3-small: multiplier 1
    const before = Number((await textOf('tokens-remaining')).replace(/\D/g, ''));
    await shot('04b-document');
    await testId('doc-embed').click();
    await waitForText('doc-result', (text) => text.startsWith('Embedded'), 'the embedding');
    const [serverChunks, serverTokens, serverCharged] = (await textOf('doc-result'))
      .match(/^Embedded (\d+) chunks: ([\d,]+) tokens counted by the server, ([\d,]+) charged/).slice(1).map((n) => Number(n.replaceAll(',', '')));
    assert.deepEqual([serverChunks, serverTokens, serverCharged], [chunks, tokens, charged]);
    await waitForText('tokens-remaining', (text, left) => Number(text.replace(/\D/g, '')) === left, 'the balance after embedding', before - charged);
    leftAfterSend = await textOf('tokens-remaining');
    await page.goto(`${server.url}/#/`);
  });

  await t.test('the usage page charts by day and by model and lists the events', async () => {
    await testId('nav-usage').click();
    await waitForText('chart-model', (text) => text.includes('gpt-4o'), 'the model chart');
    await waitForText('events', (text) => text.includes('avatar') && text.includes('chat') && text.includes('embedding'), 'the event list');
    assert.match(await textOf('chart-day'), /\d{4}-\d{2}-\d{2}/);
    const [download] = await Promise.all([page.waitForEvent('download', { timeout }), testId('statement-json').click()]);
    await waitForText('statement-status', (text) => text.startsWith('Statement verified in your browser'), 'the statement check');
    assert.match(await textOf('statement-status'), /: \d+ receipts, [1-9]\d* charges, [\d,]+ tokens used$/);
    const statement = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
    assert.equal(statement.format, 'tokenmeter-statement/1');
    assert.ok(statement.charges.some((charge) => charge.operation === 'embedding'));
    await shot('05-usage');
    await page.goto(`${server.url}/#/`);
    await waitForText('tokens-remaining', (text, left) => text === left, 'the balance after navigating back', leftAfterSend);
  });

  await t.test('at phone and desktop widths the pages fit the screen and axe finds nothing serious', async () => {
    for (const viewport of [{ width: 390, height: 844 }, { width: 1280, height: 800 }]) {
      await page.setViewportSize(viewport);
      for (const [route, ready] of [['#/usage', 'events'], ['#/documents', 'doc-text'], ['#/', 'tokens-remaining']]) {
        await page.goto(`${server.url}/${route}`);
        await testId(ready).waitFor({ timeout });
        await testId('verified-badge').waitFor({ timeout });
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `${route} at ${viewport.width} px is ${overflow} px wider than the screen`);
        await assertAccessible(`${route} at ${viewport.width} px`);
        await shot(`05-${viewport.width}-${route.slice(2) || 'chat'}`);
      }
    }
    await waitForText('tokens-remaining', (text, left) => text === left, 'the balance after the checks', leftAfterSend);
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

  await t.test('the sidebar offers each paid plan of the catalog and its credit pack', async () => {
    await testId('plan-picker').waitFor({ timeout });
    assert.equal(await testId('plan-option-pro').isDisabled(), true); // the plan the user has
    assert.match(await textOf('plan-option-pro'), /^Pro · your plan/);
    assert.match(await textOf('plan-option-team'), /^Switch to Team.*50,000,000 tokens · 200 avatars a period$/);
    assert.equal(await textOf('buy-pack-credits-1m'), 'Buy credits · 1,000,000 tokens');
    assert.equal(await textOf('credits'), 'Credits: 0 tokens');
    assert.equal(await textOf('tokens-alerts'), 'Alerts at 80 % and 100 %');
  });

  await t.test('a credit pack bought through the stand-in shows as credits, and the tokens left grow by the pack', async () => {
    const before = countIn(await textOf('tokens-remaining'));
    await payInNewTab(testId('buy-pack-credits-1m'), '12-pack-checkout');
    await waitForText('credits', (text) => text === 'Credits: 1,000,000 tokens', 'the credits');
    await waitForText('tokens-remaining', (text, left) => Number(text.replace(/\D/g, '')) === left, 'the pack in what is left', before + 1_000_000);
    assert.match(await textOf('tokens'), / of 11,000,000 used \(plan \+ credits\)/);
    await testId('verified-badge').waitFor({ timeout });
    await shot('12-credits');
  });

  await t.test('switching to team through checkout raises the limit at once and keeps the credits', async () => {
    const before = countIn(await textOf('tokens-remaining'));
    await payInNewTab(testId('plan-option-team'), '13-team-checkout');
    await waitForText('plan', (text) => text === 'team', 'the plan to turn team');
    await waitForText('tokens-remaining', (text, left) => Number(text.replace(/\D/g, '')) === left, 'the team limit', before + 40_000_000);
    assert.equal(await textOf('credits'), 'Credits: 1,000,000 tokens');
    assert.equal(await testId('plan-option-team').isDisabled(), true);
    assert.equal(await testId('plan-option-pro').isDisabled(), false);
    await testId('verified-badge').waitFor({ timeout });
    await shot('13-team');
  });

  await t.test('"Manage subscription" opens the customer portal of the stand-in', async () => {
    const [portal] = await Promise.all([page.context().waitForEvent('page', { timeout }), testId('manage-subscription').click()]);
    await portal.waitForURL(/\/billing\?/, { timeout });
    await portal.getByText('Customer portal').waitFor({ timeout });
    assert.match(portal.url(), /[?&]signature=/);
    await portal.screenshot({ path: path.join(shots, '14-portal.png'), fullPage: true });
    await portal.close();
  });

  await t.test('usage reaching 80 % of the capacity marks the bar and says so', async () => {
    assert.equal(await testId('tokens-mark-80').getAttribute('data-reached'), 'false');
    const { user_id: user } = await (await fetch(`${server.url}/demo/session`)).json();
    const { tokens } = await server.service('GET', `/v1/users/${encodeURIComponent(user)}/usage`);
    const capacity = tokens.limit + tokens.credits;
    assert.equal(capacity, 51_000_000);
    // Exactly to 80 %: used × 100 = 80 × capacity.
    await server.service('POST', '/v1/usage/record', {
      user_id: user, operation: 'chat', model: 'gpt-4o-mini', input_tokens: capacity * 0.8 - tokens.used, output_tokens: 0,
    });
    await waitForText('tokens-alerts', (text) => text === '80 % of your tokens used', 'the 80 % alert');
    assert.equal(await testId('tokens-mark-80').getAttribute('data-reached'), 'true');
    assert.equal(await testId('tokens-mark-100').getAttribute('data-reached'), 'false');
    assert.equal(await textOf('tokens-remaining'), '10,200,000 left');
    await testId('verified-badge').waitFor({ timeout });
    await shot('15-threshold');
    await assertAccessible('the sidebar with credits, team and a reached alert');
  });
});

test('no uncaught error in the page', () => {
  assert.deepEqual(pageErrors, [], `uncaught page errors:\n${pageErrors.join('\n\n')}`);
});
