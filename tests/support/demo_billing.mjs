// What the demo sells, as `make demo` sets it up (tools/demo/run.sh): the
// catalog with two paid plans and a credit pack, and the LemonSqueezy
// stand-in flags that sell the same variants. The e2e and hook suites start
// their servers with these, so what they test is what the demo shows; keep
// the two files in step.
//   pro:  variants 1 (monthly, $19) and 2 (yearly, $190)
//   team: variant 3 ($49)
//   credits-1m: variant 4, a one-time pack of 1,000,000 tokens ($4.99)
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const demoCatalogFile = path.join(repoRoot, 'tools/demo/catalog.json');

export const standinSaleArgs = [
  '--store-id', '1', '--variant-id', '1', '--pack-variants', '4',
  '--variant-price', '1=1900', '--variant-price', '2=19000', '--variant-price', '3=4900', '--variant-price', '4=499',
];
