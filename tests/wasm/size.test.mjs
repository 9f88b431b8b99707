// The browser download (wasm + loader, no tokenizer data) stays within budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { budgetBytes, measure } from './size.mjs';

test('wasm + loader are at most 200 KB gzipped', () => {
  const { total } = measure();
  assert.ok(total.gzip <= budgetBytes, `${total.gzip} bytes gzipped > ${budgetBytes}`);
  assert.ok(total.gzip > 10 * 1024, 'suspiciously small: is the package assembled?');
});
