// Writes a .br and a .gz sibling next to every file of a built web app that
// compresses (.wasm, .tmbpe tokenizer files, .js, .mjs, .css, .html, .json,
// .svg, .map, .txt), at the highest levels: `tokenmeter serve --web-root`
// sends a sibling to a browser that accepts it (server/http/static_files.cpp)
// and compresses nothing itself. A sibling that would not be smaller is not
// written (the server then sends the file as is).
//
// Used by web-demo/vite.config.ts after every build; also a command:
//   node web-demo/precompress.mjs DIR
import { readdir, readFile, writeFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);

// The extensions static_files.cpp marks compressible.
export const compressible = ['.wasm', '.tmbpe', '.js', '.mjs', '.css', '.html', '.json', '.svg', '.map', '.txt'];

async function* filesUnder(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(full);
    else if (entry.isFile()) yield full;
  }
}

// Compresses every eligible file under `dir`; returns what was written.
export async function precompress(dir) {
  const written = [];
  for await (const file of filesUnder(dir)) {
    if (!compressible.includes(path.extname(file))) continue;
    const bytes = await readFile(file);
    const siblings = [
      ['.br', () => brotli(bytes, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
          [zlib.constants.BROTLI_PARAM_MODE]: path.extname(file) === '.wasm' || path.extname(file) === '.tmbpe'
            ? zlib.constants.BROTLI_MODE_GENERIC : zlib.constants.BROTLI_MODE_TEXT,
        },
      })],
      ['.gz', () => gzip(bytes, { level: zlib.constants.Z_BEST_COMPRESSION })],
    ];
    for (const [suffix, compress] of siblings) {
      const target = file + suffix;
      const compressed = await compress();
      if (compressed.length < bytes.length) {
        await writeFile(target, compressed);
        written.push(target);
      } else {
        // A stale sibling from an earlier build must not outlive its file.
        await unlink(target).catch(() => {});
      }
    }
  }
  return written;
}

// A Vite plugin: precompresses the output directory once the bundle is written.
export function precompressPlugin() {
  let outDir = '';
  return {
    name: 'tokenmeter-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    async closeBundle() {
      await precompress(outDir);
    },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir || !(await stat(dir).catch(() => null))?.isDirectory()) {
    console.error('usage: node web-demo/precompress.mjs DIR');
    process.exit(2);
  }
  const written = await precompress(dir);
  console.log(`precompressed: ${written.length} files written under ${dir}`);
}
