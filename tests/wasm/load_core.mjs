// Loads the Node build of the wasm core for tests. Emscripten 3.1.6's loader
// cannot fetch() a file path under Node 20, so the bytes are passed in.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
export const wasmDir = path.resolve(repoRoot, process.env.TM_WASM_DIR ?? 'build/wasm/wasm');
export const vectorsDir = path.join(repoRoot, 'tests/vectors');

let modulePromise;

export function loadCore() {
  modulePromise ??= (async () => {
    const require = createRequire(import.meta.url);
    const factory = require(path.join(wasmDir, 'tokenmeter.node.cjs'));
    const core = await factory({ wasmBinary: fs.readFileSync(path.join(wasmDir, 'tokenmeter.node.wasm')) });
    if (!core.ready()) throw new Error('libsodium did not initialize in wasm');
    return core;
  })();
  return modulePromise;
}

export function readVectors(name) {
  return JSON.parse(fs.readFileSync(path.join(vectorsDir, name), 'utf8'));
}
