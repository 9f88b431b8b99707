// A server render: renderToString(<TokenLimitsProvider><App/></TokenLimitsProvider>)
// in a plain `node` process, with @tokenmeter/react and @tokenmeter/wasm
// installed by name in a scratch app (node_modules links to build/*/package,
// the way npm would lay them out). The markup says 'loading'; no fetch, no
// timer, and the process exits by itself (nothing left holding it open).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';

const repoRoot = path.resolve(__dirname, '../..');
const app = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-ssr-'));
afterAll(() => fs.rmSync(app, { recursive: true, force: true }));

function link(name: string, target: string) {
  const at = path.join(app, 'node_modules', name);
  fs.mkdirSync(path.dirname(at), { recursive: true });
  fs.symlinkSync(target, at, 'dir');
}

const script = `
import { createElement } from 'react';
import { renderToString } from 'react-dom/server';

const calls = { fetch: 0, setTimeout: 0, setInterval: 0 };
globalThis.fetch = () => { calls.fetch += 1; return Promise.reject(new Error('fetch during a server render')); };
const { setTimeout: realSetTimeout, setInterval: realSetInterval } = globalThis;
globalThis.setTimeout = (...args) => { calls.setTimeout += 1; return realSetTimeout(...args); };
globalThis.setInterval = (...args) => { calls.setInterval += 1; return realSetInterval(...args); };

const { TokenLimitsProvider, useTokenLimits, useTokenCount } = await import('@tokenmeter/react');

function App() {
  const limits = useTokenLimits();
  const count = useTokenCount('How many tokens is this?', 'gpt-4o');
  const estimate = limits.estimate({ operation: 'chat', model: 'gpt-4o', text: 'hello' });
  return createElement('p', { 'data-status': limits.status },
    \`limits=\${limits.status} count=\${count.status} tokens=\${limits.tokens} estimate=\${estimate}\`);
}

const html = renderToString(createElement(TokenLimitsProvider,
  { baseUrl: 'http://127.0.0.1:9', getAccessToken: () => 'token', userKey: 'user-1' }, createElement(App)));
// Let the loader's own file reads finish, then list what would keep node
// alive (stdio aside).
await new Promise((resolve) => setImmediate(resolve));
const handles = process.getActiveResourcesInfo().filter((kind) => !['TTYWrap', 'PipeWrap'].includes(kind));
console.log(JSON.stringify({ html, calls, handles }));
`;

test('renderToString with the provider: loading markup, no fetch, no timer, and node exits', async () => {
  link('@tokenmeter/react', path.join(repoRoot, 'build/react/package'));
  link('@tokenmeter/wasm', path.join(repoRoot, 'build/wasm/package'));
  link('react', path.join(repoRoot, 'node_modules/react'));
  link('react-dom', path.join(repoRoot, 'node_modules/react-dom'));
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'ssr-app', private: true, type: 'module' }));
  fs.writeFileSync(path.join(app, 'render.mjs'), script);

  const started = Date.now();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    // --preserve-symlinks: packages resolve their own imports from the app's
    // node_modules, as they would once installed there.
    const child = execFile(process.execPath, ['--preserve-symlinks', 'render.mjs'], { cwd: app, timeout: 5000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }));
    child.stdin?.end();
  });
  expect(stderr).toBe('');
  expect(code).toBe(0); // null: killed after 5 s, something kept node alive
  expect(Date.now() - started).toBeLessThan(5000);
  const result = JSON.parse(stdout) as { html: string; calls: Record<string, number>; handles: string[] };
  expect(result.html).toContain('data-status="loading"');
  expect(result.html).toContain('limits=loading count=loading tokens=null estimate=null');
  expect(result.calls).toEqual({ fetch: 0, setTimeout: 0, setInterval: 0 });
  expect(result.handles).toEqual([]);
});
