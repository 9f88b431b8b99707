// The benchmark corpus: one mixed text of at least 10 MB, built
// deterministically from files that pinned packages install, so every
// tokenizer in `make bench` encodes exactly the same bytes:
//
//   prose         English: Debian's license texts, the npm packages' READMEs
//   code          C++ (libstdc++ headers), TypeScript and JavaScript sources
//   json          package.json files and generated API records
//   multilingual  translated messages (msgstr) of coreutils, dpkg, apt, bash,
//                 tar and diffutils in 16 languages (CJK, Cyrillic, Arabic,
//                 Devanagari, Latin scripts ...)
//   data          Unicode's NamesList.txt: names, code points, tables
//
// Chunks of ~4 KB are drawn with a seeded PRNG by category weight; some get
// CRLF line endings. The SHA-256 printed identifies the corpus: it depends
// only on the npm lockfile and the Debian packages (bookworm) it reads.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prng } from '../tests/vectors/tokenizer/corpus.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
export const corpusBytesMin = 10_500_000;

function files(dir, accept, limit = Infinity) {
  const out = [];
  const walk = (d) => {
    if (!fs.existsSync(d)) return;
    for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (accept(full) && out.length < limit) out.push(full);
    }
  };
  walk(dir);
  return out;
}

// The translated strings of a GNU gettext .mo file (UTF-8 catalogs only).
function moStrings(file) {
  const b = fs.readFileSync(file);
  if (b.length < 28) return [];
  const le = b.readUInt32LE(0) === 0x950412de;
  const u32 = (o) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const count = u32(8);
  const table = u32(16);
  const strings = [];
  for (let i = 0; i < count; i++) {
    const length = u32(table + 8 * i);
    const offset = u32(table + 8 * i + 4);
    strings.push(b.subarray(offset, offset + length).toString('utf8'));
  }
  if (!/charset=UTF-8/i.test(strings[0] ?? '')) return [];
  return strings.slice(1).map((s) => s.replace(/\0/g, '\n'));
}

function syntheticJson(random, count) {
  const models = ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet', 'text-embedding-3-small'];
  const lines = [];
  for (let i = 0; i < count; i++) {
    lines.push(
      JSON.stringify({
        id: `evt_${Math.floor(random() * 1e12).toString(36)}`,
        user_id: `u_${Math.floor(random() * 1e6)}`,
        operation: random() < 0.8 ? 'chat' : 'embedding',
        model: models[Math.floor(random() * models.length)],
        input_tokens: Math.floor(random() * 5000),
        output_tokens: Math.floor(random() * 2000),
        multiplier: random() < 0.5 ? '1' : '5/2',
        created_at: new Date(1.7e12 + Math.floor(random() * 3e10)).toISOString(),
        ok: random() < 0.97,
      }),
    );
  }
  return lines.join('\n') + '\n';
}

function chunks(text, size = 4096) {
  const out = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + size);
    const newline = text.indexOf('\n', end);
    end = newline < 0 ? text.length : newline + 1;
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}

function sources(random) {
  const read = (f) => fs.readFileSync(f, 'utf8');
  const licenses = ['GPL-3', 'LGPL-2.1', 'Apache-2.0', 'MPL-2.0', 'Artistic', 'GFDL-1.3'].map((n) => `/usr/share/common-licenses/${n}`);
  const readmes = files(path.join(repoRoot, 'node_modules'), (f) => /README\.md$/i.test(f));
  const cxx = files('/usr/include/c++/12/bits', (f) => f.endsWith('.h'));
  const ts = files(path.join(repoRoot, 'node_modules/gpt-tokenizer/src'), (f) => f.endsWith('.ts') && !f.includes('.gen.'));
  const js = files(path.join(repoRoot, 'node_modules/jose/dist/node/esm'), (f) => f.endsWith('.js'));
  const packages = files(path.join(repoRoot, 'node_modules'), (f) => f.endsWith('package.json'));
  const languages = ['ja', 'zh_CN', 'zh_TW', 'ko', 'ru', 'uk', 'ar', 'hi', 'de', 'fr', 'es', 'pt_BR', 'pl', 'tr', 'vi', 'el'];
  const domains = ['coreutils', 'dpkg', 'apt', 'bash', 'tar', 'diffutils'];
  const mo = [];
  for (const language of languages) {
    for (const domain of domains) {
      const file = `/usr/share/locale/${language}/LC_MESSAGES/${domain}.mo`;
      if (fs.existsSync(file)) mo.push(file);
    }
  }
  return {
    prose: { weight: 30, text: [...licenses, ...readmes].filter((f) => fs.existsSync(f)).map(read).join('\n\n') },
    code: { weight: 30, text: [...cxx, ...ts, ...js].map(read).join('\n') },
    json: { weight: 10, text: packages.map(read).join('\n') + syntheticJson(random, 20000) },
    multilingual: { weight: 25, text: mo.flatMap(moStrings).join('\n') },
    data: { weight: 5, text: fs.existsSync('/usr/share/unicode/NamesList.txt') ? read('/usr/share/unicode/NamesList.txt') : '' },
  };
}

// Builds the corpus; returns {text, sha256, composition}.
export function buildCorpus(seed = 20250602) {
  const random = prng(seed);
  const categories = Object.entries(sources(random)).filter(([, s]) => s.text.length > 0);
  const pools = categories.map(([name, s]) => ({ name, weight: s.weight, chunks: chunks(s.text) }));
  const totalWeight = pools.reduce((a, p) => a + p.weight, 0);
  const composition = Object.fromEntries(pools.map((p) => [p.name, 0]));
  const parts = [];
  let bytes = 0;
  while (bytes < corpusBytesMin) {
    let pick = random() * totalWeight;
    const pool = pools.find((p) => (pick -= p.weight) < 0) ?? pools[pools.length - 1];
    let chunk = pool.chunks[Math.floor(random() * pool.chunks.length)];
    if (random() < 0.05) chunk = chunk.replace(/\n/g, '\r\n');
    const size = Buffer.byteLength(chunk);
    parts.push(chunk);
    composition[pool.name] += size;
    bytes += size;
  }
  const text = parts.join('');
  const sha256 = crypto.createHash('sha256').update(text).digest('hex');
  return { text, sha256, composition, bytes: Buffer.byteLength(text) };
}

// Writes the corpus to `file` unless an identical one is there; returns its
// description.
export function writeCorpus(file) {
  const corpus = buildCorpus();
  const existing = fs.existsSync(file) ? fs.readFileSync(file) : null;
  if (!existing || crypto.createHash('sha256').update(existing).digest('hex') !== corpus.sha256) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, corpus.text);
  }
  return corpus;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ?? path.join(repoRoot, 'build/bench/corpus.txt');
  const corpus = writeCorpus(out);
  console.log(`${out}: ${corpus.bytes} bytes, sha256 ${corpus.sha256}`);
  console.log(corpus.composition);
}
