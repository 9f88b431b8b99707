// @tokenmeter/wasm for browsers (and workers). The .wasm and the encoding
// assets sit beside this file; `new URL(literal, import.meta.url)` keeps them
// there under bundlers (Vite copies each as an asset) and plain ESM alike.
import createTokenmeterModule from './tokenmeter.mjs';
import { createTokenmeter, fetchEncodingBytes, TokenmeterError } from './sdk.js';

const encodingUrls = {
  o200k_base: new URL('./tokenizer/o200k_base.tmbpe', import.meta.url),
  cl100k_base: new URL('./tokenizer/cl100k_base.tmbpe', import.meta.url),
};
const wasmUrl = new URL('./tokenmeter.wasm', import.meta.url);

const tokenmeter = createTokenmeter({
  instantiate: (options) =>
    createTokenmeterModule({ locateFile: (file) => (file.endsWith('.wasm') ? String(options.wasmUrl ?? wasmUrl) : file) }),
  readEncoding: (encoding) => {
    const url = encodingUrls[encoding];
    if (!url) throw new TokenmeterError('unknown_encoding', encoding);
    return fetchEncodingBytes(url);
  },
});

export { TokenmeterError };
export const {
  init, isReady, setCatalog, catalog, loadTokenizer, tokenizerReady,
  countTokens, countChatTokens, price, estimate, verifyReceipt, remainingAfter,
} = tokenmeter;
export default tokenmeter;
