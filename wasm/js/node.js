// @tokenmeter/wasm for Node (tests, scripts): the CommonJS build of the same
// core, given its bytes directly because Emscripten 3.1.6's loader cannot
// fetch() a file path under Node 20 (TOOLCHAIN.md).
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { createTokenmeter, TokenmeterError } from './sdk.js';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));

const tokenmeter = createTokenmeter({
  instantiate: async () => {
    const factory = createRequire(import.meta.url)(here('./tokenmeter.node.cjs'));
    return factory({ wasmBinary: await fs.readFile(here('./tokenmeter.wasm')) });
  },
  readEncoding: async (encoding) => {
    if (!/^[a-z0-9_]+$/.test(encoding)) throw new TokenmeterError('unknown_encoding', encoding);
    return new Uint8Array(await fs.readFile(here(`./tokenizer/${encoding}.tmbpe`)));
  },
});

export { TokenmeterError };
export const {
  init, isReady, setCatalog, catalog, loadTokenizer, tokenizerReady,
  countTokens, countChatTokens, price, estimate, verifyReceipt, remainingAfter,
} = tokenmeter;
export default tokenmeter;
