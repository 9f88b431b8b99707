// @tokenmeter/react and billing, against a real `tokenmeter serve --demo`
// selling what the demo sells (tools/demo/catalog.json: pro, team, a pack of
// 1,000,000 tokens) through the LemonSqueezy stand-in: credits in the quota,
// a debt after a refund, several plans and packs through startCheckout, the
// customer portal, and the usage alerts' thresholds.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { CompactSign, importJWK } from 'jose';
import { TokenLimitsClient, type TokenLimitsOptions } from '@tokenmeter/react';
import { MemoryStorage, TestServer, until } from './server';

const server = new TestServer();
const clients: TokenLimitsClient[] = [];
let userCount = 0;

beforeAll(() => server.start());
afterAll(() => server.dispose());
afterEach(() => {
  while (clients.length) clients.pop()!.stop();
});

function newUser() {
  userCount += 1;
  const user = `billing-user-${userCount}-${Date.now()}`;
  return { user, token: server.userToken(user) };
}

function client(token: string, overrides: Partial<TokenLimitsOptions> = {}) {
  const visited: string[] = [];
  const c = new TokenLimitsClient({
    baseUrl: server.baseUrl,
    getAccessToken: () => token,
    storage: new MemoryStorage(),
    channel: null,
    locks: null,
    reconnect: { initialMs: 100, maxMs: 400 },
    navigate: (url) => visited.push(url),
    ...overrides,
  });
  clients.push(c);
  void c.start();
  return { c, visited };
}

// Signs a receipt with the server's own key: a balance the server could
// sign but that a test cannot easily reach through the API (a debt carried
// into a period).
async function forgeReceipt(claims: Record<string, unknown>) {
  const jwk = server.signingKeyJwk;
  const key = await importJWK({ kty: jwk.kty, crv: jwk.crv, d: jwk.d, x: jwk.x }, 'EdDSA');
  const payload = new TextEncoder().encode(JSON.stringify(Object.fromEntries(Object.entries(claims).sort())));
  return new CompactSign(payload).setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid, typ: 'tokenmeter-receipt+jwt' }).sign(key);
}

function claimsOf(receipt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(receipt.split('.')[1], 'base64url').toString('utf8'));
}

describe('credits', () => {
  test('a pack bought through startCheckout({ pack }) adds its tokens to credits, capacity and remaining, live', async () => {
    const { user, token } = newUser();
    const { c, visited } = client(token);
    await until('live', () => c.getState().live);
    expect(c.getState().catalog?.packs).toEqual([{ id: 'credits-1m', variant_id: '4', tokens: 1_000_000 }]);
    expect((await server.record(user, 'gpt-4o-mini', 1000, 0)).status).toBe(200);
    await until('the charge', () => c.getState().tokens?.used === 1000);

    const url = await c.startCheckout({ pack: 'credits-1m' });
    expect(visited).toEqual([url]);
    await server.pay(url);
    await until('the credits, live', () => c.getState().credits === 1_000_000);
    const state = c.getState();
    expect(state.plan).toBe('free');
    expect(state.tokens).toEqual({ limit: 250_000, used: 1000, reserved: 0, credits: 1_000_000, capacity: 1_250_000, remaining: 1_249_000 });
    expect(state.verified).toBe(true);
    // The same number the server reports.
    const snapshot = await (await fetch(`${server.baseUrl}/v1/me/usage`, { headers: { Authorization: `Bearer ${token}` } })).json();
    expect(snapshot.tokens.remaining).toBe(state.tokens!.remaining);
    expect(snapshot.tokens.credits).toBe(1_000_000);
    // Past the plan's allowance, into the credits: the estimate agrees with the server.
    expect(c.canAfford({ operation: 'chat', model: 'gpt-4o-mini', inputTokens: 1_000_000 })).toBe(true);
    expect(c.canAfford({ operation: 'chat', model: 'gpt-4o-mini', inputTokens: 1_249_001 })).toBe(false);
  });

  test('a refund of spent credits leaves used above capacity: remaining 0, every estimate refused, as the server refuses', async () => {
    const { user, token } = newUser();
    const { c } = client(token);
    await until('live', () => c.getState().live);
    await server.pay(await c.startCheckout({ pack: 'credits-1m' }));
    await until('the credits', () => c.getState().credits === 1_000_000);
    const orderId = await server.newestOrder('4');
    expect((await server.record(user, 'gpt-4o-mini', 600_000, 0)).status).toBe(200);
    await until('the charge', () => c.getState().tokens?.used === 600_000);

    await server.refundOrder(orderId);
    await until('the credits taken back', () => c.getState().tokens?.capacity === 250_000);
    const state = c.getState();
    expect(state.tokens).toMatchObject({ used: 600_000, credits: 0, capacity: 250_000, remaining: 0 });
    expect(claimsOf(state.receipt!)).toMatchObject({ credits: 0, credits_clawed: 1_000_000 });
    expect(state.thresholds).toEqual([{ percent: 80, reached: true }, { percent: 100, reached: true }]);
    // Nothing fits, not even an avatar's flat price or a charge of zero.
    expect(c.estimate({ operation: 'chat', model: 'gpt-4o-mini', inputTokens: 0, maxOutputTokens: 0 })).toMatchObject({ chargedTokens: 0, remainingTokens: 0, fits: false });
    expect(c.canAfford({ operation: 'avatar' })).toBe(false);
    const refused = await server.service('/v1/usage/authorize', { user_id: user, operation: 'chat', model: 'gpt-4o-mini', input_tokens: 1, max_output_tokens: 0 });
    expect(refused.status).toBe(402);
  });

  test('a negative credit balance (a debt carried into the period) reads as a debt, not as more room', async () => {
    const { user, token } = newUser();
    const { c } = client(token);
    await until('ready', () => c.getState().verified);
    const receipt = c.getState().receipt!;
    const current = claimsOf(receipt);
    const debt = await forgeReceipt({
      ...current, seq: (current.seq as number) + 1, iat: (current.iat as number) + 1, event: 'credits_refunded',
      prev: createHash('sha256').update(receipt.split('.')[1]).digest('base64url'),
      credits: -200_000, credits_clawed: 200_000, tokens_used: 40_000,
    });
    const accepted = c.accept(debt);
    expect(c.getState().error).toBeNull();
    expect(accepted).toBe(true);
    const state = c.getState();
    expect(state).toMatchObject({ userId: user, chain: 'linked', verified: true });
    expect(state.credits).toBe(-200_000);
    expect(state.tokens).toEqual({ limit: 250_000, used: 40_000, reserved: 0, credits: -200_000, capacity: 50_000, remaining: 10_000 });
    // 40,000 of a capacity of 50,000 is exactly 80 %.
    expect(state.thresholds).toEqual([{ percent: 80, reached: true }, { percent: 100, reached: false }]);
    expect(c.canAfford({ operation: 'chat', model: 'gpt-4o-mini', inputTokens: 10_000 })).toBe(true);
    expect(c.canAfford({ operation: 'chat', model: 'gpt-4o-mini', inputTokens: 10_001 })).toBe(false);
  });
});

describe('plans and the customer portal', () => {
  test('startCheckout() with no argument still buys pro; { plan: "team" } buys team, which wins at once as an upgrade', async () => {
    const { token } = newUser();
    const { c, visited } = client(token);
    await until('live', () => c.getState().live);
    const bodies: unknown[] = [];
    const recording: typeof fetch = (input, init) => {
      if (String(input).endsWith('/v1/me/checkout')) bodies.push(JSON.parse(String(init?.body)));
      return fetch(input, init);
    };
    const recorded = client(token, { fetch: recording }).c;

    await server.pay(await c.startCheckout());
    await until('pro', () => c.getState().plan === 'pro');
    expect(c.getState().tokens?.limit).toBe(10_000_000);

    await server.pay(await recorded.startCheckout({ plan: 'team', redirectUrl: 'http://127.0.0.1/back' }));
    await until('team', () => c.getState().plan === 'team');
    expect(c.getState().tokens).toMatchObject({ limit: 50_000_000, capacity: 50_000_000, credits: 0 });
    expect(bodies).toEqual([{ plan: 'team', redirect_url: 'http://127.0.0.1/back' }]);
    expect(visited).toHaveLength(1);
  });

  test('a plan or pack the catalog does not sell, or both at once, is refused with a code', async () => {
    const { token } = newUser();
    const { c, visited } = client(token);
    await until('live', () => c.getState().live);
    await expect(c.startCheckout({ plan: 'enterprise' })).rejects.toMatchObject({ code: 'unknown_plan', status: 400 });
    await expect(c.startCheckout({ plan: 'free' })).rejects.toMatchObject({ code: 'plan_not_for_sale' });
    await expect(c.startCheckout({ pack: 'credits-9m' })).rejects.toMatchObject({ code: 'unknown_pack' });
    // @ts-expect-error: a checkout buys a plan or a pack, not both
    await expect(c.startCheckout({ plan: 'pro', pack: 'credits-1m' })).rejects.toMatchObject({ code: 'invalid_value' });
    expect(visited).toEqual([]);
  });

  test('openPortal posts /v1/me/portal and navigates to a fresh portal URL; before any subscription it is no_subscription', async () => {
    const { token } = newUser();
    const { c, visited } = client(token);
    await until('live', () => c.getState().live);
    await expect(c.openPortal()).rejects.toMatchObject({ code: 'no_subscription', status: 404 });
    expect(visited).toEqual([]);

    await server.pay(await c.startCheckout({ plan: 'pro' }));
    await until('pro', () => c.getState().plan === 'pro');
    const elsewhere: string[] = [];
    const url = await c.openPortal({ navigate: (to) => elsewhere.push(to) });
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.standinPort}/billing\\?`));
    expect(elsewhere).toEqual([url]);
    expect(visited).toHaveLength(1); // the checkout only: the per-call navigate wins
    const again = await c.openPortal();
    expect(again).not.toBe(url); // signed and short-lived: a new one per call
  });
});

describe('usage alert thresholds', () => {
  test('default 80 % and 100 % of capacity, reached exactly at used × 100 = percent × capacity', async () => {
    const { user, token } = newUser();
    const { c } = client(token);
    await until('live', () => c.getState().live);
    expect(c.getState().thresholds).toEqual([{ percent: 80, reached: false }, { percent: 100, reached: false }]);
    await server.record(user, 'gpt-4o-mini', 199_999, 0);
    await until('the charge', () => c.getState().tokens?.used === 199_999);
    expect(c.getState().thresholds[0]).toEqual({ percent: 80, reached: false });
    await server.record(user, 'gpt-4o-mini', 1, 0);
    await until('80 % reached', () => c.getState().thresholds[0]?.reached === true);
    expect(c.getState().thresholds[1]).toEqual({ percent: 100, reached: false });

    // Credits raise the capacity, so the same use is below 80 % again.
    await server.pay(await c.startCheckout({ pack: 'credits-1m' }));
    await until('the credits', () => c.getState().credits === 1_000_000);
    expect(c.getState().thresholds).toEqual([{ percent: 80, reached: false }, { percent: 100, reached: false }]);
  });

  test("the snapshot's alerts.thresholds are read when the server sends them, and kept for offline use", async () => {
    const { user, token } = newUser();
    const storage = new MemoryStorage();
    // A server that states its alerts: the snapshot gains the field (not
    // the signed receipt, which carries balances only). The stream is cut,
    // so the refreshed snapshot is the one read.
    const withAlerts: typeof fetch = async (input, init) => {
      const path = String(input);
      if (path.endsWith('/v1/me/usage/stream')) throw new TypeError('fetch failed');
      const response = await fetch(input, init);
      if (!path.endsWith('/v1/me/usage')) return response;
      const snapshot = await response.json();
      return Response.json({ ...snapshot, alerts: { thresholds: [50, 90, 150] } });
    };
    const { c } = client(token, { fetch: withAlerts, storage });
    await until('keys and catalog', () => c.getState().catalog !== null);
    await c.refresh();
    expect(c.getState().thresholds.map((t) => t.reached)).toEqual([false, false, false]);
    await server.record(user, 'gpt-4o-mini', 125_000, 0);
    await c.refresh();
    expect(c.getState().thresholds).toEqual([
      { percent: 50, reached: true }, { percent: 90, reached: false }, { percent: 150, reached: false },
    ]);

    // A malformed field changes nothing.
    const malformed: typeof fetch = async (input, init) => {
      const response = await withAlerts(input, init);
      if (!String(input).endsWith('/v1/me/usage')) return response;
      return Response.json({ ...(await response.json()), alerts: { thresholds: [90, 50] } });
    };
    const second = client(token, { fetch: malformed, storage }).c;
    await until('ready from storage', () => second.getState().status === 'ready');
    await second.refresh();
    expect(second.getState().thresholds.map((t) => t.percent)).toEqual([50, 90, 150]);
  });
});
