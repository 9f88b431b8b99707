#!/usr/bin/env node
// Generates core/src/unicode_class_table.cpp: the Unicode character classes
// the pre-tokenizer needs, from Debian's unicode-data package.
//
// Each code point gets one byte: a general-category group in bits 0-2
// (other, Lu, Ll, Lt, Lm, Lo, M, N) and White_Space in bit 3. That is all
// the two tiktoken patterns ask of Unicode: \p{L} and its five parts,
// \p{M}, \p{N} and \s (Rust regex: the White_Space property). The table is
// two-level (block index, then deduplicated blocks), so it is small enough to
// ship in the wasm build.
//
// It also derives, from CaseFolding.txt, which characters match the letters
// of the contractions ('s 't 're 've 'm 'll 'd) under Rust regex's
// case-insensitive matching (simple case folding): for example U+017F LATIN
// SMALL LETTER LONG S matches "s".
//
// usage: node gen_unicode_tables.mjs [--ucd DIR] [--out FILE] [--check]
//   --check compares with the committed file instead of writing it, so a
//   test can prove the committed table is what the generator makes.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const ucd = option('--ucd', '/usr/share/unicode');
const out = option('--out', path.resolve(here, '../../core/src/unicode_class_table.cpp'));
const check = args.includes('--check');

const read = (name) => {
  const file = path.join(ucd, name);
  if (!fs.existsSync(file)) {
    console.error(`gen_unicode_tables: ${file} is missing (apt-get install unicode-data)`);
    process.exit(1);
  }
  return fs.readFileSync(file, 'utf8');
};

const versionOf = (text, name) => {
  const m = text.match(new RegExp(`^# ${name}-(\\d+\\.\\d+\\.\\d+)\\.txt`, 'm'));
  if (!m) throw new Error(`no version header in ${name}.txt`);
  return m[1];
};

const codePointCount = 0x110000;
// Category groups; keep in sync with UnicodeCategory in unicode_class.hpp.
const group = { other: 0, Lu: 1, Ll: 2, Lt: 3, Lm: 4, Lo: 5, M: 6, N: 7 };
const whiteSpaceBit = 8;
const groupOf = (gc) => {
  if (gc in group) return group[gc];
  if (gc === 'Mn' || gc === 'Mc' || gc === 'Me') return group.M;
  if (gc === 'Nd' || gc === 'Nl' || gc === 'No') return group.N;
  return group.other;
};

function classes() {
  const table = new Uint8Array(codePointCount);
  let rangeStart = -1;
  for (const line of read('UnicodeData.txt').split('\n')) {
    if (!line) continue;
    const fields = line.split(';');
    const cp = parseInt(fields[0], 16);
    const name = fields[1];
    const value = groupOf(fields[2]);
    if (name.endsWith(', First>')) {
      rangeStart = cp;
      continue;
    }
    if (name.endsWith(', Last>')) {
      table.fill(value, rangeStart, cp + 1);
      rangeStart = -1;
      continue;
    }
    table[cp] = value;
  }
  const propList = read('PropList.txt');
  for (const line of propList.split('\n')) {
    const m = line.match(/^([0-9A-F]+)(?:\.\.([0-9A-F]+))?\s*;\s*White_Space\b/);
    if (!m) continue;
    const first = parseInt(m[1], 16);
    const last = m[2] ? parseInt(m[2], 16) : first;
    for (let cp = first; cp <= last; cp++) table[cp] |= whiteSpaceBit;
  }
  return table;
}

// Characters other than the ASCII letters themselves that fold (simple case
// folding: statuses C and S) to the same letter as one of "strvmld" or its
// capital.
function contractionFolds() {
  const fold = new Map();
  for (const line of read('CaseFolding.txt').split('\n')) {
    const m = line.match(/^([0-9A-F]+); ([CS]); ([0-9A-F]+);/);
    if (m) fold.set(parseInt(m[1], 16), parseInt(m[3], 16));
  }
  const folded = (cp) => fold.get(cp) ?? cp;
  const letters = new Set([...'strevmld'].map((c) => c.codePointAt(0)));
  const extra = [];
  for (const [cp, target] of fold) {
    if (cp < 0x80) continue;  // ASCII capitals are handled by the scanner itself
    if (letters.has(folded(target))) extra.push([cp, String.fromCodePoint(folded(target))]);
  }
  return extra.sort((a, b) => a[0] - b[0]);
}

function twoLevel(table, shift) {
  const size = 1 << shift;
  const blocks = [];
  const indexOf = new Map();
  const index = [];
  for (let start = 0; start < codePointCount; start += size) {
    const block = table.subarray(start, start + size);
    const key = Buffer.from(block).toString('latin1');
    if (!indexOf.has(key)) {
      indexOf.set(key, blocks.length);
      blocks.push(block);
    }
    index.push(indexOf.get(key));
  }
  const indexBytes = blocks.length <= 256 ? 1 : 2;
  return { shift, blocks, index, indexBytes, bytes: index.length * indexBytes + blocks.length * size };
}

function render() {
  const unicodeData = read('UnicodeData.txt');
  const version = versionOf(read('DerivedAge.txt'), 'DerivedAge');
  for (const name of ['PropList', 'CaseFolding']) {
    const v = versionOf(read(`${name}.txt`), name);
    if (v !== version) throw new Error(`${name}.txt is Unicode ${v}, DerivedAge.txt ${version}`);
  }
  void unicodeData;
  const table = classes();
  // Pick the block size that gives the smallest table.
  let best = null;
  for (let shift = 5; shift <= 9; shift++) {
    const candidate = twoLevel(table, shift);
    if (!best || candidate.bytes < best.bytes) best = candidate;
  }
  const folds = contractionFolds();
  const indexType = best.indexBytes === 1 ? 'std::uint8_t' : 'std::uint16_t';
  const rows = (values, perLine) => {
    const lines = [];
    for (let i = 0; i < values.length; i += perLine) {
      lines.push('    ' + Array.from(values.slice(i, i + perLine)).join(',') + ',');
    }
    return lines.join('\n');
  };
  const blockValues = [];
  for (const block of best.blocks) blockValues.push(...block);
  return `// GENERATED by tools/tokenizer/gen_unicode_tables.mjs from Debian's unicode-data
// (Unicode ${version}: UnicodeData.txt, PropList.txt, CaseFolding.txt). Do not edit:
// change the generator and run \`node tools/tokenizer/gen_unicode_tables.mjs\`.
// ${best.index.length} block entries of ${1 << best.shift} code points, ${best.blocks.length} distinct blocks,
// ${best.bytes} bytes in all.
#include "unicode_class.hpp"

namespace tokenmeter::unicode {

namespace {

constexpr ${indexType} block_index[${best.index.length}] = {
${rows(best.index, 32)}
};

constexpr std::uint8_t block_classes[${blockValues.length}] = {
${rows(blockValues, 64)}
};

}  // namespace

std::string_view unicode_version() { return "${version}"; }

std::uint8_t code_point_class(std::uint32_t cp) {
    if (cp >= ${codePointCount}) return 0;
    const unsigned block = block_index[cp >> ${best.shift}];
    return block_classes[(block << ${best.shift}) | (cp & ${(1 << best.shift) - 1})];
}

char contraction_letter_fold(std::uint32_t cp) {
    switch (cp) {
${folds.map(([cp, letter]) => `        case 0x${cp.toString(16).toUpperCase()}: return '${letter}';`).join('\n')}
        default: break;
    }
    if (cp >= 'A' && cp <= 'Z') return static_cast<char>(cp - 'A' + 'a');
    if (cp < 0x80) return static_cast<char>(cp);
    return 0;
}

}  // namespace tokenmeter::unicode
`;
}

const text = render();
if (check) {
  const current = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
  if (current !== text) {
    console.error(`gen_unicode_tables: ${out} differs from what the generator makes; rerun it`);
    process.exit(1);
  }
  console.log(`gen_unicode_tables: ${path.basename(out)} is up to date`);
} else {
  fs.writeFileSync(out, text);
  console.log(`gen_unicode_tables: wrote ${out} (${text.length} characters)`);
}
