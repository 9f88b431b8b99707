// init({ tokenizerDir }) under Node: the tokenizer files come from the
// directory given, not the package's tokenizer/ (each test file runs in its
// own process, so this init is the module's first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { importPackage, packageDir } from './package_paths.mjs';

test('tokenizers load from init({ tokenizerDir }), and a missing one is a TokenmeterError', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-tokenizers-'));
  try {
    // Only cl100k_base is there: o200k_base must fail, proving the package's
    // own copy is not read.
    fs.copyFileSync(path.join(packageDir, 'tokenizer/cl100k_base.tmbpe'), path.join(dir, 'cl100k_base.tmbpe'));
    const tm = await importPackage('node.js');
    await tm.init({ tokenizerDir: dir });
    await tm.loadTokenizer('text-embedding-3-small');
    assert.deepEqual(tm.countTokens('hello world', 'text-embedding-3-small'), { tokens: 2, exact: true });
    await assert.rejects(tm.loadTokenizer('gpt-4o'), (error) => {
      assert.ok(error instanceof tm.TokenmeterError);
      assert.equal(error.code, 'encoding_unavailable');
      assert.equal(typeof error.retryAt, 'number');
      return true;
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
