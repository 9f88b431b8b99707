// The packages as a new user installs them: `npm pack` of both, installed
// from the tarballs into a fresh app (React and Vite from the registry, or
// npm's cache), then (1) a Node script counting with @tokenmeter/wasm,
// (2) a server render with @tokenmeter/react that must return loading markup
// and let Node exit, (3) a Vite build with no plugin and no config that must
// emit the .wasm and both tokenizer files as assets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const rootManifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const versionOf = (name) => rootManifest.devDependencies[name];
let app;

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: app, encoding: 'utf8', timeout: 240_000, ...options });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed (${result.signal ?? result.status}):\n${output}`);
  return output;
}

function pack(dir) {
  const output = run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', app], { cwd: dir });
  return path.join(app, JSON.parse(output)[0].filename);
}

before(() => {
  app = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-fresh-app-'));
  const wasm = pack(path.join(root, 'build/wasm/package'));
  const react = pack(path.join(root, 'build/react/package'));
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({
    name: 'fresh-app', private: true, type: 'module',
    dependencies: {
      '@tokenmeter/wasm': `file:${wasm}`, '@tokenmeter/react': `file:${react}`,
      react: versionOf('react'), 'react-dom': versionOf('react-dom'), vite: versionOf('vite'),
    },
  }, null, 2));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error']);
});

after(() => fs.rmSync(app, { recursive: true, force: true }));

test('Node: counts with the installed @tokenmeter/wasm', () => {
  fs.writeFileSync(path.join(app, 'count.mjs'), `
    import { init, loadTokenizer, countTokens } from '@tokenmeter/wasm';
    await init();
    await loadTokenizer('gpt-4o');
    console.log(JSON.stringify(countTokens('Hello, world!', 'gpt-4o')));
  `);
  const output = run('node', ['count.mjs'], { timeout: 30_000 });
  assert.deepEqual(JSON.parse(output.trim()), { tokens: 4, exact: true });
});

test('Node: a server render with @tokenmeter/react is loading markup and exits', () => {
  fs.writeFileSync(path.join(app, 'render.mjs'), `
    import { createElement as h } from 'react';
    import { renderToString } from 'react-dom/server';
    import { TokenLimitsProvider, useTokenLimits } from '@tokenmeter/react';
    let fetches = 0;
    globalThis.fetch = async () => { fetches += 1; throw new Error('no fetch during a server render'); };
    function Limits() { const limits = useTokenLimits(); return h('p', null, 'status=' + limits.status); }
    const html = renderToString(h(TokenLimitsProvider, { baseUrl: 'http://127.0.0.1:9', getAccessToken: () => 'token', userKey: 'u1' }, h(Limits)));
    console.log(JSON.stringify({ html, fetches }));
  `);
  // The timeout is the test: a client started during render would keep Node alive.
  const output = run('node', ['render.mjs'], { timeout: 15_000 });
  const { html, fetches } = JSON.parse(output.trim());
  assert.match(html, /status=loading/);
  assert.equal(fetches, 0);
});

test('Vite: a plain build emits the .wasm and both tokenizer files as assets', () => {
  fs.writeFileSync(path.join(app, 'index.html'), '<!doctype html><div id="root"></div><script type="module" src="/main.js"></script>');
  fs.writeFileSync(path.join(app, 'main.js'), `
    import { init, loadTokenizer, countTokens } from '@tokenmeter/wasm';
    await init();
    await loadTokenizer('gpt-4o');
    document.getElementById('root').textContent = String(countTokens('hi', 'gpt-4o').tokens);
  `);
  run('npx', ['--no-install', 'vite', 'build', '--logLevel', 'warn']);
  const assets = fs.readdirSync(path.join(app, 'dist/assets'));
  assert.ok(assets.some((file) => /^tokenmeter-.*\.wasm$/.test(file)), `no .wasm in ${assets.join(', ')}`);
  assert.ok(assets.some((file) => /^o200k_base-.*\.tmbpe$/.test(file)), `no o200k_base in ${assets.join(', ')}`);
  assert.ok(assets.some((file) => /^cl100k_base-.*\.tmbpe$/.test(file)), `no cl100k_base in ${assets.join(', ')}`);
});
