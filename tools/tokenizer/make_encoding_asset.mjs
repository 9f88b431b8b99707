#!/usr/bin/env node
// Converts tiktoken's rank data (the `tiktoken` npm package,
// encoders/<name>.json) into the compact binary asset the core loads
// (tokenmeter::Encoding::load), one per encoding.
//
// The input is pinned: the ranks, re-serialized in OpenAI's canonical
// `.tiktoken` text form ("<base64 token> <rank>\n" in rank order), must hash to
// the SHA-256 OpenAI publishes for that file, and the pre-tokenization pattern
// must be exactly the one the core's hand-written scanner implements. Any
// mismatch is a hard error: the build stops rather than count with other data.
//
// Asset layout (all integers little-endian):
//   magic      8 bytes  "TMBPE" 0 0 1   (format version 1)
//   pattern    u8       0 = o200k_base pattern, 1 = cl100k_base pattern
//   name_len   u8
//   reserved   u16      0
//   tokens     u32      number of mergeable ranks (ids 0 .. tokens-1)
//   blob_bytes u32      total bytes of all tokens
//   specials   u32      number of special tokens
//   name       name_len bytes (ASCII)
//   lengths    `tokens` bytes: byte length of each token, in rank order (1..128)
//   blob       `blob_bytes` bytes: the tokens' bytes, concatenated in rank order
//   special    `specials` times: u32 id, u8 length, the token's bytes
// The core pins the SHA-256 of each whole asset, so it also refuses bytes
// that were not made by this script from the pinned input.
//
// usage: node make_encoding_asset.mjs --encoding o200k_base|cl100k_base
//          [--tiktoken-dir node_modules/tiktoken] --out FILE
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// OpenAI's published SHA-256 of the `.tiktoken` rank files (tiktoken_ext/openai_public.py).
const encodings = {
  o200k_base: {
    pattern: 0,
    sha256: '446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d',
    tokens: 199998,
    patStr:
      "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
      "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
      "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  },
  cl100k_base: {
    pattern: 1,
    sha256: '223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7',
    tokens: 100256,
    patStr:
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" +
      '|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+',
  },
};

const tokenBytesMax = 128;

function fail(message) {
  console.error(`make_encoding_asset: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const options = { tiktokenDir: path.resolve(here, '../../node_modules/tiktoken') };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (value === undefined) fail(`${key} needs a value`);
    if (key === '--encoding') options.encoding = value;
    else if (key === '--tiktoken-dir') options.tiktokenDir = value;
    else if (key === '--out') options.out = value;
    else fail(`unknown option ${key}`);
  }
  if (!(options.encoding in encodings)) fail(`--encoding must be one of ${Object.keys(encodings).join(', ')}`);
  if (!options.out) fail('--out is required');
  return options;
}

// Ranks in the npm package's compressed form: lines of
// "<placeholder> <first rank> <base64> <base64> ...", ranks consecutive.
function readRanks(json, expectedCount) {
  const tokens = [];
  for (const line of json.bpe_ranks.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const first = Number.parseInt(fields[1], 10);
    if (first !== tokens.length) fail(`ranks are not contiguous at ${first}`);
    for (const b64 of fields.slice(2)) tokens.push(Buffer.from(b64, 'base64'));
  }
  if (tokens.length !== expectedCount) fail(`expected ${expectedCount} ranks, found ${tokens.length}`);
  return tokens;
}

function canonicalSha256(tokens) {
  const hash = crypto.createHash('sha256');
  tokens.forEach((bytes, rank) => hash.update(`${bytes.toString('base64')} ${rank}\n`));
  return hash.digest('hex');
}

function buildAsset(name, spec, tokens, specialTokens) {
  const nameBytes = Buffer.from(name, 'ascii');
  const blob = Buffer.concat(tokens);
  const header = Buffer.alloc(24);
  header.write('TMBPE\x00\x00\x01', 0, 'latin1');
  header.writeUInt8(spec.pattern, 8);
  header.writeUInt8(nameBytes.length, 9);
  header.writeUInt16LE(0, 10);
  header.writeUInt32LE(tokens.length, 12);
  header.writeUInt32LE(blob.length, 16);
  const specials = Object.entries(specialTokens).sort((a, b) => a[1] - b[1]);
  header.writeUInt32LE(specials.length, 20);
  const lengths = Buffer.from(tokens.map((t) => t.length));
  const specialParts = specials.map(([text, id]) => {
    const bytes = Buffer.from(text, 'utf8');
    const head = Buffer.alloc(5);
    head.writeUInt32LE(id, 0);
    head.writeUInt8(bytes.length, 4);
    return Buffer.concat([head, bytes]);
  });
  return Buffer.concat([header, nameBytes, lengths, blob, ...specialParts]);
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const spec = encodings[options.encoding];
  const input = path.join(options.tiktokenDir, 'encoders', `${options.encoding}.json`);
  if (!fs.existsSync(input)) fail(`${input} is missing: run npm ci (make deps) first`);
  const json = JSON.parse(fs.readFileSync(input, 'utf8'));
  if (json.pat_str !== spec.patStr) {
    fail(`${options.encoding}: pat_str differs from the pattern the core implements:\n  ${json.pat_str}`);
  }
  const tokens = readRanks(json, spec.tokens);
  const digest = canonicalSha256(tokens);
  if (digest !== spec.sha256) fail(`${options.encoding}: rank data SHA-256 ${digest}, pinned ${spec.sha256}`);
  for (const [rank, bytes] of tokens.entries()) {
    if (bytes.length === 0 || bytes.length > tokenBytesMax) fail(`token ${rank} has ${bytes.length} bytes`);
  }
  const asset = buildAsset(options.encoding, spec, tokens, json.special_tokens);
  fs.mkdirSync(path.dirname(options.out), { recursive: true });
  const temporary = `${options.out}.tmp`;
  fs.writeFileSync(temporary, asset);
  fs.renameSync(temporary, options.out);
  const assetDigest = crypto.createHash('sha256').update(asset).digest('hex');
  console.log(`make_encoding_asset: ${options.encoding}: ${asset.length} bytes, sha256 ${assetDigest}`);
}

main();
