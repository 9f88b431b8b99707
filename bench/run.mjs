#!/usr/bin/env node
// `make bench`: the tokenizer against its peers, in one run.
//
//  1. One mixed corpus of at least 10 MB (bench/corpus.mjs), encoded by
//       tokenmeter native  the whole `tokenmeter count` process: start, read
//                          the file, load the vocabulary, count (median of 5)
//       tokenmeter wasm    the Node build (countTextTokens on TextEncoder
//                          bytes, vocabulary already loaded; median of 5)
//       tiktoken           npm, encode_ordinary (median of 3)
//       js-tiktoken        npm, encode (1 run: it is slow)
//       gpt-tokenizer      npm, encode (median of 3)
//     with MB/s (10^6 bytes per second) and the ratio to tiktoken. The peers'
//     vocabulary loading is not timed, which favours them. Every count is
//     checked against tiktoken's.
//  2. The hostile series: one piece of 10 KB, 100 KB and 1 MB ("aaa..."),
//     o200k_base. Peers whose time grows quadratically are stopped once a
//     size takes more than 3 s (the next would take 100 times longer).
//
// usage: node bench/run.mjs [--native-dir build/native] [--wasm-dir build/wasm]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { writeCorpus } from './corpus.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return path.resolve(repoRoot, i >= 0 ? args[i + 1] : fallback);
};
const nativeDir = option('--native-dir', 'build/native');
const wasmDir = option('--wasm-dir', 'build/wasm');
const benchDir = path.join(repoRoot, 'build/bench');
const tokenmeter = path.join(nativeDir, 'server/tokenmeter');
const benchTool = path.join(nativeDir, 'bench/tokenmeter_tokenizer_bench');
const encodings = ['o200k_base', 'cl100k_base'];

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000);
const time = (fn) => {
  const start = performance.now();
  const result = fn();
  return { ms: performance.now() - start, result };
};
const runs = (count, fn) => {
  const results = [];
  for (let i = 0; i < count; i++) results.push(time(fn));
  return { ms: median(results.map((r) => r.ms)), result: results[0].result };
};

async function loadWasm() {
  const factory = require(path.join(wasmDir, 'wasm/tokenmeter.node.cjs'));
  const core = await factory({ wasmBinary: fs.readFileSync(path.join(wasmDir, 'wasm/tokenmeter.node.wasm')) });
  const loadMs = {};
  for (const name of encodings) {
    const asset = new Uint8Array(fs.readFileSync(path.join(wasmDir, `tokenizer/${name}.tmbpe`)));
    const { ms, result } = time(() => core.loadEncoding(asset));
    if (!result.ok) throw new Error(`wasm loadEncoding ${name}: ${result.message}`);
    loadMs[name] = ms;
  }
  return { core, loadMs };
}

async function peers() {
  const { get_encoding } = require('tiktoken');
  const { Tiktoken } = await import('js-tiktoken/lite');
  const gpt = {
    o200k_base: await import('gpt-tokenizer/encoding/o200k_base'),
    cl100k_base: await import('gpt-tokenizer/encoding/cl100k_base'),
  };
  const ranks = {
    o200k_base: (await import('js-tiktoken/ranks/o200k_base')).default,
    cl100k_base: (await import('js-tiktoken/ranks/cl100k_base')).default,
  };
  const none = new Set();
  return Object.fromEntries(
    encodings.map((name) => {
      const tiktoken = get_encoding(name);
      const jsTiktoken = new Tiktoken(ranks[name]);
      return [
        name,
        {
          tiktoken: (text) => tiktoken.encode_ordinary(text).length,
          'js-tiktoken': (text) => jsTiktoken.encode(text, [], []).length,
          'gpt-tokenizer': (text) => gpt[name].encode(text, { allowedSpecial: none, disallowedSpecial: none }).length,
        },
      ];
    }),
  );
}

function nativeWholeProcess(name, file) {
  const { ms, result } = runs(5, () => spawnSync(tokenmeter, ['count', '--encoding', name, file], { encoding: 'utf8' }));
  if (result.status !== 0) throw new Error(`tokenmeter count failed: ${result.stderr}`);
  return { ms, tokens: Number(result.stdout.trim()) };
}

function nativeInProcess(name, file, repeat = 3) {
  const out = spawnSync(benchTool, [name, file, String(repeat)], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`${benchTool} failed: ${out.stderr}`);
  return JSON.parse(out.stdout);
}

function wasmCount(core, name, text) {
  const { ms, result } = runs(5, () => core.countTextTokens(name, new TextEncoder().encode(text)));
  if (!result.ok) throw new Error(result.message);
  return { ms, tokens: result.tokens };
}

function pad(value, width, right = false) {
  const s = String(value);
  return right ? s.padEnd(width) : s.padStart(width);
}

function corpusTable(rows) {
  const lines = [];
  lines.push(`| implementation | ${encodings.map((e) => `${e} MB/s | x tiktoken`).join(' | ')} | counts |`);
  lines.push(`|---|${encodings.map(() => '---:|---:').join('|')}|---|`);
  for (const row of rows) {
    const cells = encodings.map((e) => {
      const r = row[e];
      return `${r.mbps.toFixed(1)} | ${r.ratio.toFixed(1)}x`;
    });
    lines.push(`| ${row.label} | ${cells.join(' | ')} | ${row.counts} |`);
  }
  return lines.join('\n');
}

async function corpusBenchmark(peer, wasm) {
  const file = path.join(benchDir, 'corpus.txt');
  const corpus = writeCorpus(file);
  const text = corpus.text;
  const bytes = corpus.bytes;
  console.log(`corpus: ${file}, ${bytes} bytes, sha256 ${corpus.sha256.slice(0, 16)}...`);
  console.log(`  ${Object.entries(corpus.composition).map(([k, v]) => `${k} ${(v / 1e6).toFixed(1)} MB`).join(', ')}\n`);
  const results = { native: {}, 'native (in-process)': {}, wasm: {}, tiktoken: {}, 'js-tiktoken': {}, 'gpt-tokenizer': {} };
  const counts = Object.fromEntries(Object.keys(results).map((k) => [k, 'identical']));
  for (const name of encodings) {
    const reference = runs(3, () => peer[name].tiktoken(text));
    results.tiktoken[name] = reference.ms;
    const expected = reference.result;
    const check = (label, tokens) => {
      if (tokens !== expected) counts[label] = `differ (${name}: ${tokens} vs ${expected})`;
    };
    const native = nativeWholeProcess(name, file);
    results.native[name] = native.ms;
    check('native', native.tokens);
    const inProcess = nativeInProcess(name, file);
    results['native (in-process)'][name] = inProcess.best_ms;
    check('native (in-process)', inProcess.tokens);
    const counted = wasmCount(wasm.core, name, text);
    results.wasm[name] = counted.ms;
    check('wasm', counted.tokens);
    const js = time(() => peer[name]['js-tiktoken'](text));
    results['js-tiktoken'][name] = js.ms;
    check('js-tiktoken', js.result);
    const gpt = runs(3, () => peer[name]['gpt-tokenizer'](text));
    results['gpt-tokenizer'][name] = gpt.ms;
    check('gpt-tokenizer', gpt.result);
    console.log(`  ${name}: ${expected} tokens; native vocabulary load ${inProcess.load_ms.toFixed(1)} ms, wasm ${wasm.loadMs[name].toFixed(1)} ms`);
  }
  const labels = {
    native: 'tokenmeter native (whole `tokenmeter count` process)',
    'native (in-process)': 'tokenmeter native (in-process count)',
    wasm: 'tokenmeter wasm (Node)',
    tiktoken: 'tiktoken 1.0.22 (npm, wasm)',
    'js-tiktoken': 'js-tiktoken 1.0.21',
    'gpt-tokenizer': 'gpt-tokenizer 4.0.0',
  };
  const rows = Object.entries(results).map(([key, byEncoding]) => {
    const row = { label: labels[key], counts: counts[key] };
    for (const name of encodings) {
      row[name] = { mbps: mbps(bytes, byEncoding[name]), ratio: results.tiktoken[name] / byEncoding[name] };
    }
    return row;
  });
  console.log('\n' + corpusTable(rows) + '\n');
}

function hostileSeries(peer, wasm) {
  const sizes = [10_000, 100_000, 1_000_000];
  const name = 'o200k_base';
  const rows = [];
  const timed = (label, fn) => {
    const row = { label, cells: [] };
    let stopped = false;
    for (const size of sizes) {
      if (stopped) {
        row.cells.push('not run');
        continue;
      }
      try {
        const ms = fn(size);
        row.cells.push(`${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`);
        if (ms > 3000) stopped = true;
      } catch (error) {
        row.cells.push(error instanceof RangeError ? 'RangeError (stack overflow)' : `error: ${error.message}`);
        stopped = true;
      }
    }
    rows.push(row);
  };
  const files = Object.fromEntries(
    sizes.map((size) => {
      const file = path.join(benchDir, `hostile_${size}.txt`);
      fs.writeFileSync(file, 'a'.repeat(size));
      return [size, file];
    }),
  );
  timed('tokenmeter native, whole process', (size) => nativeWholeProcess(name, files[size]).ms);
  timed('tokenmeter native, in-process (first count)', (size) => nativeInProcess(name, files[size], 0).first_ms);
  timed('tokenmeter native, in-process (warm)', (size) => nativeInProcess(name, files[size], 3).best_ms);
  timed('tokenmeter wasm (Node)', (size) => wasmCount(wasm.core, name, 'a'.repeat(size)).ms);
  for (const label of ['tiktoken', 'js-tiktoken', 'gpt-tokenizer']) {
    timed(label, (size) => time(() => peer[name][label]('a'.repeat(size))).ms);
  }
  console.log(`hostile series: one piece of "a" x N, ${name}\n`);
  console.log(`| implementation | ${sizes.map((s) => `${s / 1000} KB`).join(' | ')} |`);
  console.log(`|---|${sizes.map(() => '---:').join('|')}|`);
  for (const row of rows) console.log(`| ${row.label} | ${row.cells.join(' | ')} |`);
  console.log('');
}

async function main() {
  for (const file of [tokenmeter, benchTool, path.join(wasmDir, 'wasm/tokenmeter.node.wasm')]) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run make native wasm first`);
  }
  fs.mkdirSync(benchDir, { recursive: true });
  const wasm = await loadWasm();
  const peer = await peers();
  console.log(`tokenizer benchmark, Node ${process.version}, ${(await import('node:os')).cpus().length} cores\n`);
  await corpusBenchmark(peer, wasm);
  hostileSeries(peer, wasm);
}

main().catch((error) => {
  console.error(`bench: ${error.message}`);
  process.exit(1);
});
