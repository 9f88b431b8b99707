#!/usr/bin/env node
// Writes the tokenizer test vectors into a build directory:
//
//   <out>/o200k_base.json, <out>/cl100k_base.json
//     {"encoding", "tiktoken", "cases": [{"text", "ids", "pieces"?}]}
//     ids from the `tiktoken` npm package's encode_ordinary (the reference);
//     "pieces" (UTF-8 byte lengths of the pre-tokenizer's pieces) for the fuzz
//     cases, from a V8 regex equivalent to tiktoken's pattern (below).
//   <out>/unicode_classes.json
//     {"runs": [[first_code_point, class], ...], "skipped": n}
//     V8's own Unicode tables (\p{Lu} ... \p{White_Space}) in the class
//     encoding of core/src/unicode_class.hpp, as an independent reference
//     for the generated table; code points that Unicode assigned after the
//     table's version (15.0) are class -1 (not compared).
//
// usage: node generate.mjs --out DIR [--ucd /usr/share/unicode]
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { tokenizerCorpus } from './corpus.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../../../package.json'));
const { get_encoding } = require('tiktoken');
const tiktokenVersion = JSON.parse(
  fs.readFileSync(path.join(path.dirname(require.resolve('tiktoken')), 'package.json'), 'utf8'),
).version;

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const out = option('--out');
const ucd = option('--ucd', '/usr/share/unicode');
if (!out) {
  console.error('usage: node generate.mjs --out DIR');
  process.exit(2);
}

// tiktoken's patterns rewritten for V8: \s becomes \p{White_Space} (Rust's
// \s; V8's own \s adds U+FEFF and lacks U+0085), and the inline (?i:...)
// group, which V8 lacks, is spelled out with simple case folding (ſ matches s).
const ws = '\\p{White_Space}';
const contraction = "'(?:[sSſ]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])";
const upper = '[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]';
const lower = '[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]';
export const v8Patterns = {
  cl100k_base: new RegExp(
    `${contraction}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^${ws}\\p{L}\\p{N}]+[\\r\\n]*|${ws}*[\\r\\n]+|${ws}+(?!\\P{White_Space})|${ws}+`,
    'gu',
  ),
  o200k_base: new RegExp(
    `[^\\r\\n\\p{L}\\p{N}]?${upper}*${lower}+(?:${contraction})?|[^\\r\\n\\p{L}\\p{N}]?${upper}+${lower}*(?:${contraction})?` +
      `|\\p{N}{1,3}| ?[^${ws}\\p{L}\\p{N}]+[\\r\\n/]*|${ws}*[\\r\\n]+|${ws}+(?!\\P{White_Space})|${ws}+`,
    'gu',
  ),
};

function v8Pieces(pattern, text) {
  const lengths = [];
  let covered = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index !== covered) throw new Error(`V8 pattern skipped text at ${match.index}`);
    lengths.push(Buffer.byteLength(match[0]));
    covered += match[0].length;
  }
  if (covered !== text.length) throw new Error('V8 pattern did not cover the text');
  return lengths;
}

function assignedCodePoints() {
  const assigned = new Uint8Array(0x110000);
  let first = -1;
  for (const line of fs.readFileSync(path.join(ucd, 'UnicodeData.txt'), 'utf8').split('\n')) {
    if (!line) continue;
    const [hex, name] = line.split(';');
    const cp = parseInt(hex, 16);
    if (name.endsWith(', First>')) first = cp;
    else if (name.endsWith(', Last>')) assigned.fill(1, first, cp + 1);
    else assigned[cp] = 1;
  }
  return assigned;
}

function unicodeClassRuns() {
  const tests = [
    [1, /^\p{Lu}$/u], [2, /^\p{Ll}$/u], [3, /^\p{Lt}$/u], [4, /^\p{Lm}$/u], [5, /^\p{Lo}$/u], [6, /^\p{M}$/u], [7, /^\p{N}$/u],
  ];
  const whiteSpace = /^\p{White_Space}$/u;
  const unassignedInV8 = /^\p{Cn}$/u;
  const assigned = assignedCodePoints();
  const runs = [];
  let skipped = 0;
  let previous = null;
  for (let cp = 0; cp < 0x110000; cp++) {
    let value;
    if (cp >= 0xd800 && cp <= 0xdfff) {
      value = 0;  // surrogates never occur in valid UTF-8
    } else {
      const ch = String.fromCodePoint(cp);
      if (!assigned[cp] && !unassignedInV8.test(ch)) {
        value = -1;  // assigned after Unicode 15.0
        skipped++;
      } else {
        value = 0;
        for (const [v, re] of tests) if (re.test(ch)) value = v;
        if (whiteSpace.test(ch)) value |= 8;
      }
    }
    if (value !== previous) runs.push([cp, value]);
    previous = value;
  }
  return { runs, skipped };
}

function main() {
  fs.mkdirSync(out, { recursive: true });
  const corpus = tokenizerCorpus();
  for (const name of ['o200k_base', 'cl100k_base']) {
    const encoding = get_encoding(name);
    const cases = corpus.map(({ text, splitCheck }) => {
      const entry = { text, ids: Array.from(encoding.encode_ordinary(text)) };
      if (splitCheck) entry.pieces = v8Pieces(v8Patterns[name], text);
      return entry;
    });
    encoding.free();
    const file = path.join(out, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify({ encoding: name, tiktoken: tiktokenVersion, cases }));
  }
  fs.writeFileSync(path.join(out, 'unicode_classes.json'), JSON.stringify(unicodeClassRuns()));
  console.log(`tokenizer vectors: ${corpus.length} cases per encoding, tiktoken ${tiktokenVersion}, in ${out}`);
}

main();
