// The package's types as a TypeScript user meets them: tsc on
// types/estimate_input.ts, whose @ts-expect-error lines must each fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

test('EstimateInput rejects both or neither input, model ids are typed, at compile time', () => {
  const tsc = spawnSync('npx', ['--no-install', 'tsc', '-p', path.join(here, 'types/tsconfig.json')], {
    cwd: root, encoding: 'utf8',
  });
  assert.equal(tsc.status, 0, `tsc failed:\n${tsc.stdout}${tsc.stderr}`);
});
