// The demo app's build: React, @tokenmeter/wasm from the wasm build
// (build/wasm/package, assembled by `cmake --build --preset wasm`) and
// @tokenmeter/react from build/react/package (`make react`), imported by
// name as an app using the published packages would.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import path from 'node:path';
import { precompressPlugin } from './precompress.mjs';

const repoRoot = path.resolve(__dirname, '..');
const wasmPackage = process.env.TM_WASM_PACKAGE_DIR ?? path.join(repoRoot, 'build/wasm/package');
const reactPackage = process.env.TM_REACT_PACKAGE_DIR ?? path.join(repoRoot, 'build/react/package');

export default defineConfig({
  root: __dirname,
  base: '/',
  // .br and .gz siblings of the .wasm, tokenizer files, scripts and styles,
  // which `tokenmeter serve --web-root` sends to browsers that accept them.
  plugins: [react(), precompressPlugin()],
  resolve: {
    alias: { '@tokenmeter/wasm': path.join(wasmPackage, 'index.js'), '@tokenmeter/react': path.join(reactPackage, 'index.js') },
    dedupe: ['react', 'react-dom'],
  },
  build: {
    outDir: process.env.TM_WEB_DEMO_OUT ?? path.join(repoRoot, 'build/web-demo'),
    emptyOutDir: true,
    assetsInlineLimit: 0, // the .wasm and encodings stay separate files, fetched when needed
  },
  server: { proxy: { '/v1': 'http://127.0.0.1:8787', '/demo': 'http://127.0.0.1:8787' } },
});
