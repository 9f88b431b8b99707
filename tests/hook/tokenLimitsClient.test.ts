// @tokenmeter/react's client against a real `tokenmeter serve --demo`: the live
// stream, verification, seq and chain rules, offline mode, tabs, checkout.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { CompactSign, importJWK } from 'jose';
import { TokenLimitsClient, type TokenLimitsOptions } from '@tokenmeter/react';
import { MemoryLocks, MemoryStorage, TestServer, until } from './server';
import * as tm from '@tokenmeter/wasm';

const server = new TestServer();
const clients: TokenLimitsClient[] = [];
let userCount = 0;

beforeAll(() => server.start());
afterAll(() => server.dispose());
afterEach(() => {
  while (clients.length) clients.pop()!.stop();
});

// A fresh user per test (ledgers are per user), and a client for them.
function newUser() {
  userCount += 1;
  const user = `hook-user-${userCount}-${Date.now()}`;
  return { user, token: server.userToken(user) };
}

function client(token: string, overrides: Partial<TokenLimitsOptions> = {}) {
  const c = new TokenLimitsClient({
    baseUrl: server.baseUrl,
    getAccessToken: () => token,
    storage: new MemoryStorage(),
    channel: null,
    locks: null,
    reconnect: { initialMs: 100, maxMs: 400 },
    ...overrides,
  });
  clients.push(c);
  void c.start();
  return c;
}

// Signs a receipt with the server's own key, so only the chain can be wrong.
async function forgeReceipt(claims: Record<string, unknown>) {
  const jwk = server.signingKeyJwk;
  const key = await importJWK({ kty: jwk.kty, crv: jwk.crv, d: jwk.d, x: jwk.x }, 'EdDSA');
  const payload = new TextEncoder().encode(JSON.stringify(Object.fromEntries(Object.entries(claims).sort())));
  return new CompactSign(payload).setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid, typ: 'tokenmeter-receipt+jwt' }).sign(key);
}

describe('live over the usage stream', () => {
  test('first snapshot is the free plan, verified and live; a charge arrives over SSE and chains', async () => {
    const { user, token } = newUser();
    const c = client(token);
    await until('a verified live snapshot', () => c.getState().verified && c.getState().live);
    const first = c.getState();
    expect(first).toMatchObject({ status: 'ready', plan: 'free', userId: user, offline: false, stale: false, leader: true });
    expect(first.tokens).toEqual({ limit: 250000, used: 0, reserved: 0, credits: 0, capacity: 250000, remaining: 250000 });
    expect(first.credits).toBe(0);
    expect(first.avatars?.limit).toBe(5);
    expect(first.asOf).not.toBeNull();

    expect((await server.record(user, 'gpt-4o', 100, 20)).status).toBe(200);
    await until('the charge', () => c.getState().tokens?.used === 360);
    const after = c.getState();
    expect(after.seq).toBeGreaterThan(first.seq);
    expect(after.verified).toBe(true);
    expect(['linked', 'gap']).toContain(after.chain);
    expect(after.chainBroken).toBe(false);
    expect(after.tokens?.remaining).toBe(250000 - 360);
  });

  test('estimate is synchronous once ready and equals what the server reserves', async () => {
    const { user, token } = newUser();
    const c = client(token);
    await until('ready', () => c.getState().verified);
    const text = 'Write a haiku about metering tokens, then explain it in two sentences.';
    const estimate = c.estimate({ operation: 'chat', model: 'gpt-4o', text, maxOutputTokens: 50 });
    expect(estimate).not.toBeNull();
    const reserved = await server.service('/v1/usage/authorize', { user_id: user, operation: 'chat', model: 'gpt-4o', text, max_output_tokens: 50 });
    expect(reserved.status).toBe(200);
    expect(estimate!.chargedTokens).toBe(reserved.body.charged_tokens);
    expect(estimate!.remainingTokens).toBe(250000 - reserved.body.charged_tokens);
    await until('the reservation shows', () => c.getState().tokens?.reserved === reserved.body.charged_tokens);

    const claude = c.estimate({ operation: 'chat', model: 'claude-3-7-sonnet', text, maxOutputTokens: 50 })!;
    const claudeReserved = await server.service('/v1/usage/authorize', { user_id: user, operation: 'chat', model: 'claude-3-7-sonnet', text, max_output_tokens: 50 });
    expect(claude.exact).toBe(false);
    expect(claude.chargedTokens).toBe(claudeReserved.body.charged_tokens);

    expect(c.canAfford({ operation: 'chat', model: 'gpt-4o', inputTokens: 1000 })).toBe(true);
    expect(c.canAfford({ operation: 'chat', model: 'gpt-4o', inputTokens: 90000 })).toBe(false); // × 3 > what is left
    expect(c.canAfford({ operation: 'avatar' })).toBe(true);
  });
});

describe('reconnecting', () => {
  test('an unreachable stream is retried with growing, capped, jittered delays', async () => {
    const { token } = newUser();
    let streamFetches = 0;
    // Keys and catalog come from the server; the stream's host is unreachable.
    const flakyFetch: typeof fetch = (input, init) => {
      if (String(input).endsWith('/v1/me/usage/stream')) {
        streamFetches += 1;
        return Promise.reject(new TypeError('fetch failed'));
      }
      return fetch(input, init);
    };
    // The reconnect timer and the jitter are the test's: each delay the
    // client asks for is recorded and fired when the test says, so what is
    // checked is the delays and the fetches counted, not a clock that a busy
    // machine slows down.
    const timers: { run: () => void; delayMs: number }[] = [];
    const jitter = [0, 0.5, 0.999, 0, 0.999, 0.25, 0.5, 0];
    let draws = 0;
    const c = client(token, {
      fetch: flakyFetch,
      reconnect: { initialMs: 100, maxMs: 400 },
      setTimer: (run, delayMs) => {
        timers.push({ run, delayMs });
        return () => undefined;
      },
      random: () => jitter[draws++],
    });
    for (let attempt = 1; attempt <= jitter.length; attempt += 1) {
      await until(`reconnect ${attempt} is scheduled`, () => timers.length === attempt);
      // One stream fetch per timer: no retry without waiting first.
      expect(streamFetches).toBe(attempt);
      expect(c.getState()).toMatchObject({ offline: true, live: false });
      if (attempt < jitter.length) timers[attempt - 1].run();
    }
    expect(draws).toBe(jitter.length);
    // The base starts at initialMs, doubles per failure and stops at maxMs;
    // the jitter takes up to half of it, so each delay lies in [base / 2, base).
    const bases = [100, 200, 400, 400, 400, 400, 400, 400];
    expect(timers.map((t) => t.delayMs)).toEqual(bases.map((base, i) => base / 2 + jitter[i] * (base / 2)));
  });

  test('a refused token is an error, not offline', async () => {
    const c = client('not-a-jwt');
    await until('an error', () => c.getState().error !== null);
    expect(c.getState().offline).toBe(false);
    expect(c.getState().error?.code).toMatch(/token|unauthorized/);
  });
});

describe('receipts', () => {
  test('the highest seq wins: an older receipt does not move the state back', async () => {
    const { user, token } = newUser();
    const c = client(token);
    await until('ready', () => c.getState().verified);
    const oldReceipt = c.getState().receipt!;
    await server.record(user, 'gpt-4o-mini', 10, 0);
    await until('the charge', () => c.getState().tokens?.used === 10);
    const seq = c.getState().seq;
    expect(c.accept(oldReceipt)).toBe(false);
    expect(c.getState().seq).toBe(seq);
    expect(c.getState().tokens?.used).toBe(10);
  });

  test('a receipt whose prev does not chain is flagged; a tampered one is refused', async () => {
    const { token } = newUser();
    const c = client(token);
    await until('ready', () => c.getState().verified);
    const s = c.getState();
    const claims = {
      iss: 'tokenmeter', sub: s.userId, iat: Math.floor(Date.now() / 1000), seq: s.seq + 1, prev: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      plan: 'free', period_start: s.period!.start, period_end: s.period!.end,
      tokens_limit: 250000, tokens_used: 0, tokens_reserved: 0, avatars_limit: 5, avatars_used: 0, avatars_reserved: 0, event: 'commit',
    };
    const broken = await forgeReceipt(claims);
    expect(c.accept(broken)).toBe(true);
    expect(c.getState()).toMatchObject({ chain: 'broken', chainBroken: true, verified: true, seq: s.seq + 1 });

    const tampered = broken.replace(/\.([^.]+)\./, (_, payload: string) => `.${payload.slice(0, -2)}${payload.endsWith('AA') ? 'BB' : 'AA'}.`);
    expect(c.accept(tampered)).toBe(false);
    expect(c.getState().verified).toBe(false);
    expect(c.getState().error?.code).toBe('receipt_invalid');
  });
})

  test('a receipt that skips a seq is a gap: signed, but not a verified continuation, and it stays so', async () => {
    const { token } = newUser();
    const c = client(token);
    await until('ready', () => c.getState().verified);
    const s = c.getState();
    expect(s).toMatchObject({ chain: 'start', chainVerified: true });
    const claims = {
      iss: 'tokenmeter', sub: s.userId, iat: Math.floor(Date.now() / 1000), seq: s.seq + 2, prev: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      plan: 'free', period_start: s.period!.start, period_end: s.period!.end,
      tokens_limit: 250000, tokens_used: 7, tokens_reserved: 0, avatars_limit: 5, avatars_used: 0, avatars_reserved: 0, event: 'commit',
    };
    // seq + 2: the change at seq + 1 never reached this client.
    const skipped = await forgeReceipt(claims);
    expect(c.accept(skipped)).toBe(true);
    expect(c.getState()).toMatchObject({ chain: 'gap', chainVerified: false, chainBroken: false, seq: s.seq + 2 });
    expect(c.getState().chain).not.toBe('linked');

    // The next receipt links to the one after the gap; the hidden change is still unverified.
    const next = tm.verifyReceipt(skipped, await (await fetch(`${server.baseUrl}/v1/keys`)).json());
    expect(next.valid).toBe(true);
    const linked = await forgeReceipt({ ...claims, seq: s.seq + 3, prev: next.valid ? next.chainDigest : '', tokens_used: 9 });
    expect(c.accept(linked)).toBe(true);
    expect(c.getState()).toMatchObject({ chain: 'linked', chainVerified: false, seq: s.seq + 3 });
  });

  test('receipts that follow one another from the server stay a verified chain', async () => {
    const { user, token } = newUser();
    const c = client(token);
    await until('live', () => c.getState().live);
    for (let i = 1; i <= 3; i += 1) {
      await server.record(user, 'gpt-4o-mini', i, 0);
      await until(`charge ${i}`, () => c.getState().tokens?.used === (i * (i + 1)) / 2);
    }
    expect(c.getState()).toMatchObject({ chain: 'linked', chainVerified: true, chainBroken: false, verified: true });
  });
;

describe('offline', () => {
  test('server down: offline with the last verified balance and local estimates; back: live again', async () => {
    const { user, token } = newUser();
    const storage = new MemoryStorage();
    const c = client(token, { storage });
    await until('ready', () => c.getState().live);
    await server.record(user, 'gpt-4o', 1000, 0);
    await until('the charge', () => c.getState().tokens?.used === 3000);

    await server.stop();
    try {
      await until('offline', () => c.getState().offline);
      expect(c.getState()).toMatchObject({ live: false, stale: true, verified: true, plan: 'free' });
      expect(c.getState().tokens?.remaining).toBe(247000);
      expect(c.estimate({ operation: 'chat', model: 'gpt-4o', text: 'hello world', maxOutputTokens: 0 })?.remainingTokens).toBe(247000 - 6);

      // A new page load while the server is down: the persisted receipt, re-verified.
      const reloaded = client(token, { storage });
      await until('restored offline', () => reloaded.getState().offline && reloaded.getState().verified);
      expect(reloaded.getState().tokens?.used).toBe(3000);
      expect(reloaded.getState().seq).toBe(c.getState().seq);
    } finally {
      await server.start();
    }
    await until('live again', () => c.getState().live && !c.getState().offline, 15000);
    await server.record(user, 'gpt-4o-mini', 5, 0);
    await until('charges flow again', () => c.getState().tokens?.used === 3005);
  });

  test('a persisted receipt that was edited is not restored', async () => {
    const { token } = newUser();
    const storage = new MemoryStorage();
    const c = client(token, { storage });
    await until('ready', () => c.getState().verified);
    const key = `tokenmeter:${server.baseUrl}`;
    const persisted = JSON.parse(storage.getItem(key)!);
    const [header, payload, signature] = persisted.receipt.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    claims.tokens_limit = 10_000_000;
    persisted.receipt = [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
    storage.setItem(key, JSON.stringify(persisted));
    const reloaded = client(token, { storage, baseUrl: server.baseUrl, fetch: () => Promise.reject(new TypeError('offline')) });
    await until('offline', () => reloaded.getState().offline);
    expect(reloaded.getState().tokens).toBeNull();
    expect(reloaded.getState().verified).toBe(false);
  });
});

test('a stored receipt signed by a stored key the server does not have is dropped once the server answers', async () => {
  const { token } = newUser();
  const storage = new MemoryStorage();
  const c = client(token, { storage });
  await until('ready', () => c.getState().verified);
  c.stop();
  const key = `tokenmeter:${server.baseUrl}`;
  const persisted = JSON.parse(storage.getItem(key)!);
  // Someone with access to the page's storage swaps in their own key and a richer receipt.
  const { generateKeyPair, exportJWK, calculateJwkThumbprint } = await import('jose');
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const exported = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(exported, 'sha256');
  const jwks = { keys: [{ ...exported, kid, alg: 'EdDSA', use: 'sig' }] };
  const claims = JSON.parse(Buffer.from(persisted.receipt.split('.')[1], 'base64url').toString());
  const richer = { ...claims, plan: 'pro', tokens_limit: 10_000_000, seq: claims.seq + 100, prev: 'A'.repeat(43) };
  const payload = new TextEncoder().encode(JSON.stringify(Object.fromEntries(Object.entries(richer).sort())));
  const forged = await new CompactSign(payload).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'tokenmeter-receipt+jwt' }).sign(privateKey);
  expect(tm.verifyReceipt(forged, jwks as never).valid).toBe(true); // the swap itself is well-formed
  storage.setItem(key, JSON.stringify({ ...persisted, receipt: forged, jwks }));

  const reloaded = client(token, { storage });
  await until('live', () => reloaded.getState().live);
  expect(reloaded.getState().plan).toBe('free');
  expect(reloaded.getState().tokens?.limit).toBe(250000);
});

describe('tabs', () => {
  test('tabs share one stream: one leader, followers get the state; when the leader goes, another takes over', async () => {
    const { user, token } = newUser();
    const locks = new MemoryLocks();
    const before = await server.liveStreams();
    const tabs = [0, 1, 2].map(() => client(token, { channel: BroadcastChannel, locks }));
    await until('all tabs verified', () => tabs.every((t) => t.getState().verified));
    await until('followers see live', () => tabs.every((t) => t.getState().live));
    expect(tabs.filter((t) => t.getState().leader)).toHaveLength(1);
    expect((await server.liveStreams()) - before).toBe(1);

    await server.record(user, 'gpt-4o-mini', 42, 0);
    await until('every tab sees the charge', () => tabs.every((t) => t.getState().tokens?.used === 42));

    // The leader's tab closes; the next in the lock's queue takes over.
    const leader = tabs.find((t) => t.getState().leader)!;
    const rest = tabs.filter((t) => t !== leader);
    leader.stop();
    await until('a new leader', () => rest.some((t) => t.getState().leader));
    expect(rest.filter((t) => t.getState().leader)).toHaveLength(1);
    await server.record(user, 'gpt-4o-mini', 8, 0);
    await until('the remaining tabs see the next charge', () => rest.every((t) => t.getState().tokens?.used === 50));
    expect((await server.liveStreams()) - before).toBe(1);
  });
});

describe('checkout', () => {
  test('startCheckout posts /v1/me/checkout and navigates; paying turns the plan to pro live', async () => {
    const { token } = newUser();
    const visited: string[] = [];
    const c = client(token, { navigate: (url) => visited.push(url) });
    await until('ready', () => c.getState().live);
    const url = await c.startCheckout({ redirectUrl: 'http://127.0.0.1/after-checkout' });
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.standinPort}/checkout/`));
    expect(visited).toEqual([url]);
    expect(c.getState().plan).toBe('free');

    // What the stand-in's Pay button does: signed webhooks to the server.
    const payUrl = new URL(url);
    payUrl.pathname += '/pay';
    const paid = await fetch(payUrl, { method: 'POST', redirect: 'manual' });
    expect(paid.status).toBeLessThan(400);
    await until('pro, live', () => c.getState().plan === 'pro');
    expect(c.getState().tokens?.limit).toBe(10_000_000);
    expect(c.getState().verified).toBe(true);
  });

  test('a checkout the server refuses is an error with its code', async () => {
    const c = client('not-a-token');
    await expect(c.startCheckout()).rejects.toMatchObject({ code: expect.stringMatching(/token|unauthorized/) });
  });
});
