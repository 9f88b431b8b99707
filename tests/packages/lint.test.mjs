// The two packages as registries and type checkers see them: publint (the
// package.json against what `npm pack` ships) and Are The Types Wrong (how
// each entry point resolves under node16 ESM and bundlers; both packages are
// ESM only, so the CommonJS resolutions are not asked of them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const packages = {
  '@tokenmeter/wasm': path.join(root, 'build/wasm/package'),
  '@tokenmeter/react': path.join(root, 'build/react/package'),
};

function run(...args) {
  const result = spawnSync('npx', ['--no-install', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

for (const [name, dir] of Object.entries(packages)) {
  test(`${name}: publint finds nothing`, () => {
    const { status, output } = run('publint', '--strict', dir);
    assert.equal(status, 0, output);
    assert.match(output, /All good!/, output);
  });

  test(`${name}: attw finds no type problem for ESM and bundlers`, () => {
    const { status, output } = run('attw', '--pack', dir, '--profile', 'esm-only', '--format', 'ascii');
    assert.equal(status, 0, output);
  });
}
