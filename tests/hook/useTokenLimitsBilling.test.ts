// @vitest-environment happy-dom
// @vitest-environment-options { "settings": { "fetch": { "disableSameOriginPolicy": true } } }
//
// useTokenLimits() as a component sees it, against a real `tokenmeter serve
// --demo` selling the demo's plans and pack: credits and thresholds in the
// hook's value, startCheckout({ pack }) and openPortal() from it, and the
// no-argument startCheckout() still buying pro.
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { createElement } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { TokenLimitsProvider, useTokenLimits, type UseTokenLimits } from '@tokenmeter/react';
import { MemoryStorage, TestServer, until } from './server';

const server = new TestServer();
let root: Root | null = null;

// Updates arrive from the server at any time (the stream), not from
// events a test fires, so React schedules them as in a browser: no act().
beforeAll(async () => {
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = false;
  await server.start();
});
afterAll(() => server.dispose());
afterEach(() => {
  root?.unmount();
  root = null;
});

// Renders a provider for a fresh user and returns a getter of the hook's newest value.
async function renderLimits(navigate: (url: string) => void) {
  const user = `hook-billing-${Date.now()}`;
  const token = server.userToken(user);
  let latest: UseTokenLimits | null = null;
  function Probe() {
    latest = useTokenLimits();
    return null;
  }
  root = createRoot(document.createElement('div'));
  root.render(createElement(TokenLimitsProvider, {
    baseUrl: server.baseUrl, getAccessToken: () => token, storage: new MemoryStorage(), channel: null, locks: null,
    reconnect: { initialMs: 100, maxMs: 400 }, navigate, userKey: user,
  }, createElement(Probe)));
  await until('the first render', () => latest !== null);
  const limits = () => latest!;
  const settle = (what: string, predicate: (value: UseTokenLimits) => boolean) => until(what, () => predicate(limits()));
  return { user, limits, settle };
}

test('useTokenLimits() gives credits, thresholds, startCheckout({ pack }), startCheckout() and openPortal()', async () => {
  const visited: string[] = [];
  const { user, limits, settle } = await renderLimits((url) => visited.push(url));
  expect(limits().status).toBe('loading');
  expect(limits().credits).toBeNull();
  expect(limits().thresholds).toEqual([]);
  await settle('ready and live', (l) => l.status === 'ready' && l.live);
  expect(limits().credits).toBe(0);
  expect(limits().thresholds).toEqual([{ percent: 80, reached: false }, { percent: 100, reached: false }]);

  await server.record(user, 'gpt-4o-mini', 200_000, 0);
  await settle('80 % reached', (l) => l.thresholds[0]?.reached === true);

  await server.pay(await limits().startCheckout({ pack: 'credits-1m' }));
  await settle('the credits', (l) => l.credits === 1_000_000);
  const ready = limits();
  if (ready.status !== 'ready') throw new Error('not ready');
  expect(ready.tokens).toEqual({ limit: 250_000, used: 200_000, reserved: 0, credits: 1_000_000, capacity: 1_250_000, remaining: 1_050_000 });
  expect(ready.thresholds).toEqual([{ percent: 80, reached: false }, { percent: 100, reached: false }]);

  await expect(limits().openPortal()).rejects.toMatchObject({ code: 'no_subscription' });
  await server.pay(await limits().startCheckout());
  await settle('pro', (l) => l.plan === 'pro');
  const portal = await limits().openPortal();
  expect(portal).toMatch(/\/billing\?/);
  expect(visited).toHaveLength(3);
  expect(visited[2]).toBe(portal);
});
