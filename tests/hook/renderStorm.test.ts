// @vitest-environment happy-dom
//
// A tokenizer file or the server's keys that fail (a 404, or an HTML page
// served in their place) must not be asked for again on every render: the
// failure is remembered and retried with a capped exponential backoff. Here
// @tokenmeter/wasm is the real package (its sdk.js and Node wasm), except that
// encodings are read over a counting fetch that fails, as the browser entry
// reads them; components using the hooks render 50 times over about a second.
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { act, createElement } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { TokenLimitsProvider, useTokenCount, useTokenLimits } from '@tokenmeter/react';

const encodingFetches = vi.hoisted(() => new Map<string, number>());

vi.mock('@tokenmeter/wasm', async () => {
  const fs = await import('node:fs/promises');
  const { createRequire } = await import('node:module');
  const path = await import('node:path');
  const packageDir = `${path.resolve(__dirname, '../../build/wasm/package')}/`;
  const sdk = await import(/* @vite-ignore */ `${packageDir}sdk.js`);
  // o200k_base answers 404; cl100k_base answers the app's HTML page (an SPA fallback).
  const failingFetch = async (url: string) => {
    const encoding = url.split('/').pop()!.replace('.tmbpe', '');
    encodingFetches.set(encoding, (encodingFetches.get(encoding) ?? 0) + 1);
    return encoding === 'o200k_base'
      ? new Response('not found', { status: 404 })
      : new Response('<!doctype html><html><body><div id="root"></div></body></html>', { status: 200, headers: { 'content-type': 'text/html' } });
  };
  const tokenmeter = sdk.createTokenmeter({
    instantiate: async () => createRequire(packageDir)(`${packageDir}tokenmeter.node.cjs`)({ wasmBinary: await fs.readFile(`${packageDir}tokenmeter.wasm`) }),
    readEncoding: (encoding: string) => sdk.fetchEncodingBytes(`http://assets.test/tokenizer/${encoding}.tmbpe`, failingFetch),
  });
  return { ...tokenmeter, default: tokenmeter, TokenmeterError: sdk.TokenmeterError };
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let root: Root | null = null;

beforeAll(() => {
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
});
afterEach(async () => {
  await act(async () => root?.unmount());
  root = null;
});

// Renders `render(i)` 50 times, 20 ms apart (about a second).
async function renderStorm(render: (i: number) => ReturnType<typeof createElement>) {
  root = createRoot(document.createElement('div'));
  for (let i = 0; i < 50; i += 1) {
    await act(async () => root!.render(render(i)));
    await act(() => sleep(20));
  }
}

describe('a failing tokenizer file is not fetched on every render', () => {
  for (const [encoding, model, answer] of [['o200k_base', 'gpt-4o', 'a 404'], ['cl100k_base', 'text-embedding-3-small', 'an HTML page']] as const) {
    test(`useTokenCount, ${encoding} answering ${answer}`, async () => {
      const seen: string[] = [];
      let renders = 0;
      function Counter({ text }: { text: string }) {
        const count = useTokenCount(text, model);
        renders += 1;
        seen.push(count.status);
        return createElement('span', null, count.status === 'ready' ? count.tokens : count.status);
      }
      await renderStorm((i) => createElement(Counter, { text: `draft ${'x'.repeat(i)}` }));
      expect(encodingFetches.get(encoding)).toBeGreaterThanOrEqual(1);
      expect(encodingFetches.get(encoding)).toBeLessThanOrEqual(3);
      expect(seen.at(-1)).toBe('error');
      // No render loop either: about one render per update (plus the load settling, and a retry).
      expect(renders).toBeLessThan(60 * 2);
    });
  }
});

test('useTokenLimits: keys answering an HTML page and a 404 tokenizer back off; estimate asks once per retry time', async () => {
  const requests = new Map<string, number>();
  const htmlEverywhere = async (input: RequestInfo | URL) => {
    const path = new URL(String(input)).pathname;
    requests.set(path, (requests.get(path) ?? 0) + 1);
    return new Response('<!doctype html><html></html>', { status: 200, headers: { 'content-type': 'text/html' } });
  };
  const before = encodingFetches.get('o200k_base') ?? 0;
  const statuses: string[] = [];
  function Balance({ text }: { text: string }) {
    const limits = useTokenLimits();
    const estimate = limits.estimate({ operation: 'chat', model: 'gpt-4o', text });
    statuses.push(limits.status);
    return createElement('p', null, `${limits.status} ${estimate?.chargedTokens ?? '…'}`);
  }
  await renderStorm((i) => createElement(TokenLimitsProvider, {
    baseUrl: 'http://api.test', getAccessToken: () => 'token', fetch: htmlEverywhere as typeof fetch,
    storage: null, channel: null, locks: null, reconnect: { initialMs: 500, maxMs: 4000 },
  }, createElement(Balance, { text: `draft ${i}` })));
  expect(requests.get('/v1/keys')).toBeGreaterThanOrEqual(1);
  expect(requests.get('/v1/keys')).toBeLessThanOrEqual(3);
  expect(requests.get('/v1/catalog') ?? 0).toBeLessThanOrEqual(3);
  expect(requests.has('/v1/me/usage/stream')).toBe(false); // nothing to verify it with
  expect((encodingFetches.get('o200k_base') ?? 0) - before).toBeLessThanOrEqual(3);
  expect(statuses.at(-1)).toBe('error');
});

test('a failed load is retried after 1 s, 2 s, 4 s … up to the cap, and not before', async () => {
  const fs = await import('node:fs/promises');
  const { createRequire } = await import('node:module');
  const path = await import('node:path');
  const packageDir = `${path.resolve(__dirname, '../../build/wasm/package')}/`;
  const sdk = await import(/* @vite-ignore */ `${packageDir}sdk.js`);
  let clock = 1_000_000;
  let reads = 0;
  const tokenmeter = sdk.createTokenmeter({
    instantiate: async () => createRequire(packageDir)(`${packageDir}tokenmeter.node.cjs`)({ wasmBinary: await fs.readFile(`${packageDir}tokenmeter.wasm`) }),
    readEncoding: async () => {
      reads += 1;
      throw new Error('HTTP 404');
    },
    now: () => clock,
    retry: { initialMs: 1000, maxMs: 4000 },
  });
  await tokenmeter.init();
  const askTenTimes = async () => {
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => tokenmeter.loadTokenizer('gpt-4o')));
    return results.map((r) => (r.status === 'rejected' ? r.reason : null));
  };
  const retryTimes: number[] = [];
  for (const waitMs of [0, 1000, 2000, 4000, 4000]) {
    clock += waitMs - 1;
    if (waitMs > 0) {
      await askTenTimes();
      expect(reads).toBe(retryTimes.length); // one millisecond early: still the remembered failure
    }
    clock += waitMs > 0 ? 1 : 0;
    const errors = await askTenTimes();
    expect(reads).toBe(retryTimes.length + 1);
    expect(errors[0]).toMatchObject({ code: 'encoding_unavailable' });
    retryTimes.push(errors[0].retryAt - clock);
  }
  expect(retryTimes).toEqual([1000, 2000, 4000, 4000, 4000]);
});
