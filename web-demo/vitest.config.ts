// @tokenmeter/react's tests (tests/hook/): Node, with @tokenmeter/wasm's Node
// build and @tokenmeter/react as built by `make react`.
import { defineConfig } from 'vitest/config';
import path from 'node:path';

const repoRoot = path.resolve(__dirname, '..');
const wasmPackage = process.env.TM_WASM_PACKAGE_DIR ?? path.join(repoRoot, 'build/wasm/package');
const reactPackage = process.env.TM_REACT_PACKAGE_DIR ?? path.join(repoRoot, 'build/react/package');

export default defineConfig({
  root: repoRoot,
  resolve: {
    alias: { '@tokenmeter/wasm': path.join(wasmPackage, 'node.js'), '@tokenmeter/react': path.join(reactPackage, 'index.js') },
  },
  test: {
    include: ['tests/hook/**/*.test.{ts,tsx}'],
    environment: 'node',
    testTimeout: 30000,
    hookTimeout: 60000,
    fileParallelism: false,
  },
});
