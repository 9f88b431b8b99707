// The hook's tests (tests/hook/): Node, with @tokenmeter/wasm's Node build.
import { defineConfig } from 'vitest/config';
import path from 'node:path';

const repoRoot = path.resolve(__dirname, '..');
const wasmPackage = process.env.TM_WASM_PACKAGE_DIR ?? path.join(repoRoot, 'build/wasm/package');

export default defineConfig({
  root: repoRoot,
  resolve: { alias: { '@tokenmeter/wasm': path.join(wasmPackage, 'node.js') } },
  test: {
    include: ['tests/hook/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30000,
    hookTimeout: 60000,
    fileParallelism: false,
  },
});
