// The one place the app imports @tokenmeter/wasm from (an alias to the built
// package: index.js in browsers, node.js under Vitest).
export * from '@tokenmeter/wasm';
export { default as tokenmeter } from '@tokenmeter/wasm';
