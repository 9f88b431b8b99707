// A real `tokenmeter serve --demo` for the hook's tests: a temporary
// directory, a loopback port of its own choosing, and helpers for the calls
// an app's backend makes (service key) and the tokens a user holds
// (dev-token).
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnListening } from '../support/spawn_listening.mjs';
import { demoCatalogFile, standinSaleArgs } from '../support/demo_billing.mjs';

const repoRoot = path.resolve(__dirname, '../..');
export const tokenmeterBinary = process.env.TM_BINARY ?? path.join(repoRoot, 'build/native/server/tokenmeter');
export const standinBinary = process.env.TM_STANDIN_BINARY ?? path.join(repoRoot, 'build/native/tools/lemonsqueezy-standin/lemonsqueezy_standin');
const webhookSecret = 'hook-tests-webhook-secret-0123456789';

export class TestServer {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-hook-'));
  private process: ChildProcess | null = null;
  private standin: ChildProcess | null = null;
  port = 0;
  standinPort = 0;

  get baseUrl() { return `http://127.0.0.1:${this.port}`; }
  private get standinUrl() { return `http://127.0.0.1:${this.standinPort}`; }
  private secret(name: string) { return fs.readFileSync(path.join(this.dir, '.tokenmeter-demo', name), 'utf8').trim(); }
  get serviceKey() { return this.secret('service-key'); }
  get signingKeyJwk() { return JSON.parse(fs.readFileSync(path.join(this.dir, '.tokenmeter-demo', 'signing-key.jwk'), 'utf8')); }

  // The LemonSqueezy stand-in, whose Pay button sends signed webhooks here,
  // selling what the demo sells (pro, team and a credit pack). It starts
  // first, on a port it picks; the server's URL is known only once the
  // server has started, so start() tells the stand-in where to send.
  private async startStandin() {
    const started = await spawnListening(standinBinary, ['--listen', '127.0.0.1:0',
      '--webhook-secret', webhookSecret, ...standinSaleArgs]);
    this.standin = started.child;
    this.standinPort = started.port;
  }

  // The first start takes a free port (port 0) and reads which from the
  // server's "listening on" line; a restart binds that same port again,
  // since clients and the stand-in hold the URL.
  async start(extraArgs: string[] = []): Promise<void> {
    if (!this.standin) await this.startStandin();
    const started = await spawnListening(tokenmeterBinary, ['serve', '--demo', '--listen', `127.0.0.1:${this.port}`, ...extraArgs], {
      cwd: this.dir,
      env: {
        ...process.env,
        TOKENMETER_CATALOG_FILE: demoCatalogFile,
        LEMONSQUEEZY_API_BASE: this.standinUrl, LEMONSQUEEZY_API_KEY: 'hook-tests-key',
        LEMONSQUEEZY_STORE_ID: '1', LEMONSQUEEZY_PRO_VARIANT_ID: '1', LEMONSQUEEZY_WEBHOOK_SECRET: webhookSecret,
      },
    });
    this.process = started.child;
    this.port = started.port;
    const told = await fetch(`${this.standinUrl}/_standin/webhook-url`, {
      method: 'PUT',
      body: JSON.stringify({ url: `${this.baseUrl}/v1/webhooks/lemonsqueezy` }),
    });
    if (!told.ok) throw new Error(`the stand-in refused the webhook URL: ${told.status}`);
  }

  // SIGKILL by default: the server going away at once. (A graceful SIGTERM
  // waits out idle keep-alive connections, which takes about 30 s.)
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
    this.process = null;
  }

  async dispose() {
    await this.stop();
    this.standin?.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  userToken(sub: string): string {
    return execFileSync(tokenmeterBinary, ['dev-token', '--secret', this.secret('jwt-secret'), '--sub', sub]).toString().trim();
  }

  // A service call, as the app's backend makes it.
  async service<T = any>(route: string, body: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.baseUrl}${route}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.serviceKey}`, 'Idempotency-Key': crypto.randomUUID(), 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as T };
  }

  record(user: string, model: string, input: number, output: number) {
    return this.service('/v1/usage/record', { user_id: user, operation: 'chat', model, input_tokens: input, output_tokens: output });
  }

  // Pays a checkout as the stand-in's Pay button does (signed webhooks to the
  // server, sent before the answer), so its effect is in the ledger on return.
  async pay(checkoutUrl: string): Promise<void> {
    const payUrl = new URL(checkoutUrl);
    payUrl.pathname += '/pay';
    payUrl.search = '';
    const paid = await fetch(payUrl, { method: 'POST', redirect: 'manual' });
    if (paid.status >= 400) throw new Error(`the stand-in refused to pay ${checkoutUrl}: ${paid.status}`);
  }

  // The stand-in's newest order of a variant (its API lists newest first).
  async newestOrder(variantId: string): Promise<string> {
    const response = await fetch(`${this.standinUrl}/v1/orders?page[size]=100`, { headers: { Authorization: 'Bearer hook-tests-key' } });
    const list = (await response.json()) as { data: { id: string | number; attributes: { first_order_item: { variant_id: string | number } } }[] };
    const order = list.data.find((o) => String(o.attributes.first_order_item.variant_id) === variantId);
    if (!order) throw new Error(`the stand-in has no order of variant ${variantId}`);
    return String(order.id);
  }

  // Refunds an order in full at the stand-in, which sends order_refunded here.
  async refundOrder(orderId: string): Promise<void> {
    const response = await fetch(`${this.standinUrl}/_standin/orders/${orderId}/refund`, { method: 'POST', body: '{}' });
    if (!response.ok) throw new Error(`the stand-in refused the refund of order ${orderId}: ${response.status}`);
  }

  async liveStreams(): Promise<number> {
    const text = await (await fetch(`${this.baseUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('tokenmeter_live_streams'));
    return line ? Number(line.split(/\s+/)[1]) : NaN;
  }
}

// navigator.locks semantics (exclusive, FIFO, held until the callback's
// promise settles) for Node, where Web Locks do not exist.
export class MemoryLocks {
  private tails = new Map<string, Promise<unknown>>();
  request(name: string, callback: () => Promise<unknown>): Promise<unknown> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    const run = previous.then(() => callback());
    this.tails.set(name, run.catch(() => undefined));
    return run;
  }
}

export class MemoryStorage {
  private items = new Map<string, string>();
  getItem(key: string) { return this.items.get(key) ?? null; }
  setItem(key: string, value: string) { this.items.set(key, value); }
}

// Resolves when `predicate` holds, polling; fails the test with `what` after `timeoutMs`.
export async function until(what: string, predicate: () => boolean, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
