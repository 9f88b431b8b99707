// @tokenmeter/wasm as npm would publish it: `npm pack --dry-run` of the
// assembled package lists one .wasm, both tokenizer files, README and
// LICENSE, and package.json exports itself and names engines and a license.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { packageDir } from './package_paths.mjs';

test('the packed package ships one wasm, its tokenizer files, README and LICENSE', () => {
  const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: packageDir, encoding: 'utf8' });
  assert.equal(pack.status, 0, pack.stderr);
  const files = JSON.parse(pack.stdout)[0].files.map((file) => file.path).sort();
  assert.deepEqual(files.filter((file) => file.endsWith('.wasm')), ['tokenmeter.wasm']);
  for (const file of ['README.md', 'LICENSE', 'package.json', 'index.js', 'index.d.ts', 'node.js', 'sdk.js',
    'tokenmeter.mjs', 'tokenmeter.node.cjs', 'tokenizer/o200k_base.tmbpe', 'tokenizer/cl100k_base.tmbpe']) {
    assert.ok(files.includes(file), `${file} is not in the package: ${files.join(', ')}`);
  }
});

test('package.json exports ./package.json and names engines and a license', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
  assert.equal(manifest.exports['./package.json'], './package.json');
  assert.ok(manifest.engines?.node, 'engines.node');
  assert.equal(manifest.license, 'MIT');
});
