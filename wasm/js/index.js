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
// init({ tokenizerUrl }): a directory (a CDN, your own path) holding
// <encoding>.tmbpe, instead of the files beside this module.
let tokenizerBase = null;

const tokenmeter = createTokenmeter({
  instantiate: (options) => {
    tokenizerBase = options.tokenizerUrl ? tokenizerDirectoryUrl(options.tokenizerUrl) : null;
    return createTokenmeterModule({ locateFile: (file) => (file.endsWith('.wasm') ? String(options.wasmUrl ?? wasmUrl) : file) });
  },
  readEncoding: (encoding) => {
    const url = encodingUrls[encoding];
    if (!url) throw new TokenmeterError('unknown_encoding', encoding);
    return fetchEncodingBytes(tokenizerBase ? new URL(`${encoding}.tmbpe`, tokenizerBase) : url);
  },
});

// A directory URL, relative to the page, always ending in '/' so the file
// name is appended to it rather than replacing its last segment.
function tokenizerDirectoryUrl(value) {
  const text = String(value);
  return new URL(text.endsWith('/') ? text : `${text}/`, globalThis.location?.href);
}

export { TokenmeterError };
export const {
  init, isReady, setCatalog, catalog, loadTokenizer, tokenizerReady,
  countTokens, tokenCount, encode, decode, countChatTokens, price, estimate, verifyReceipt, verifyStatement, remainingAfter,
} = tokenmeter;
export default tokenmeter;
