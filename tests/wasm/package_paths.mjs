// Where the assembled @tokenmeter/wasm package lives (wasm/CMakeLists.txt).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const packageDir = path.resolve(repoRoot, process.env.TM_WASM_PACKAGE_DIR ?? 'build/wasm/package');
export const importPackage = (file) => import(path.join(packageDir, file));
