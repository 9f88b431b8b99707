// The Node entry has the same API as the browser entry; it differs only in
// how it loads the .wasm and the tokenizer data.
export * from "./index.js";
export { default } from "./index.js";
