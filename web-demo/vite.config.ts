// The demo app's build: React, and @tokenmeter/wasm from the wasm build
// (build/wasm/package, assembled by `cmake --build --preset wasm`).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import path from 'node:path';
import { precompressPlugin } from './precompress.mjs';

const repoRoot = path.resolve(__dirname, '..');
const wasmPackage = process.env.TM_WASM_PACKAGE_DIR ?? path.join(repoRoot, 'build/wasm/package');

export default defineConfig({
  root: __dirname,
  base: '/',
  // .br and .gz siblings of the .wasm, tokenizer files, scripts and styles,
  // which `tokenmeter serve --web-root` sends to browsers that accept them.
  plugins: [react(), precompressPlugin()],
  resolve: { alias: { '@tokenmeter/wasm': path.join(wasmPackage, 'index.js') } },
  build: {
    outDir: process.env.TM_WEB_DEMO_OUT ?? path.join(repoRoot, 'build/web-demo'),
    emptyOutDir: true,
    assetsInlineLimit: 0, // the .wasm and encodings stay separate files, fetched when needed
  },
  server: { proxy: { '/v1': 'http://127.0.0.1:8787', '/demo': 'http://127.0.0.1:8787' } },
});
