// Gzipped size of what a browser downloads before any tokenizer data: the
// .wasm, the Emscripten loader and the JS wrapper (budget: 200 KB).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { packageDir } from './package_paths.mjs';

export const budgetBytes = 200 * 1024;
const parts = ['tokenmeter.wasm', 'tokenmeter.mjs', 'sdk.js', 'index.js'];
const encodings = ['tokenizer/o200k_base.tmbpe', 'tokenizer/cl100k_base.tmbpe'];

function sizes(file) {
  const bytes = fs.readFileSync(path.join(packageDir, file));
  return { file, raw: bytes.length, gzip: zlib.gzipSync(bytes, { level: 9 }).length };
}

export function measure() {
  const rows = parts.map(sizes);
  const total = rows.reduce((sum, row) => ({ raw: sum.raw + row.raw, gzip: sum.gzip + row.gzip }), { raw: 0, gzip: 0 });
  return { rows, total, encodings: encodings.map(sizes) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { rows, total, encodings: data } = measure();
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  for (const row of [...rows, { file: 'total (budget 200 KB gzipped)', ...total }, ...data]) {
    console.log(`${row.file.padEnd(34)} ${kb(row.raw).padStart(10)} raw ${kb(row.gzip).padStart(10)} gzip`);
  }
  process.exit(total.gzip <= budgetBytes ? 0 : 1);
}
