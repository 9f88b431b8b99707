// @tokenmeter/wasm for Node (tests, scripts): the CommonJS build of the same
// core, given its bytes directly because Emscripten 3.1.6's loader cannot
// fetch() a file path under Node 20 (TOOLCHAIN.md).
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTokenmeter, TokenmeterError } from './sdk.js';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));

// init({ tokenizerDir }): a directory holding <encoding>.tmbpe, instead of
// the package's own tokenizer/.
let tokenizerDir = null;

const tokenmeter = createTokenmeter({
  instantiate: async (options) => {
    tokenizerDir = options.tokenizerDir ? String(options.tokenizerDir) : null;
    const factory = createRequire(import.meta.url)(here('./tokenmeter.node.cjs'));
    return factory({ wasmBinary: await fs.readFile(here('./tokenmeter.wasm')) });
  },
  readEncoding: async (encoding) => {
    if (!/^[a-z0-9_]+$/.test(encoding)) throw new TokenmeterError('unknown_encoding', encoding);
    const file = tokenizerDir ? path.join(tokenizerDir, `${encoding}.tmbpe`) : here(`./tokenizer/${encoding}.tmbpe`);
    return new Uint8Array(await fs.readFile(file));
  },
});

export { TokenmeterError };
export const {
  init, isReady, setCatalog, catalog, loadTokenizer, tokenizerReady,
  countTokens, tokenCount, encode, decode, countChatTokens, price, estimate, verifyReceipt, verifyStatement, remainingAfter,
} = tokenmeter;
export default tokenmeter;
