// `make bench`, gateway part: the same OpenAI calls sent straight to the
// OpenAI stand-in and through tokenmeter's gateway in front of it, in one
// run, for short completions and for streams. Reported per case: latency
// p50 and p99, time to first byte (a stream's first event) p50, requests/s,
// and what the gateway adds (ms, and ratios gateway / direct).
//
// The gateway's work per call: count the prompt exactly, authorize (one
// durable ledger change), forward, relay, settle (a second durable change),
// sign two receipts. The stand-in answers at once, so the added time is the
// gateway's own. SQLite with durable commits; keep-alive clients; each of
// `--concurrency` clients meters its own user.
//
// usage: node bench/gateway/gateway.mjs [--seconds 5] [--concurrency 16]
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnListening } from '../../tests/support/spawn_listening.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const native = path.join(root, 'build/native');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} wants a positive number, not '${args[at + 1]}'`);
  return value;
};
const seconds = option('--seconds', 5);
const concurrency = option('--concurrency', 16);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenmeter-bench-gateway-'));
const serviceKey = 'bench-service-key-' + crypto.randomBytes(12).toString('hex');
const children = [];
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
});

async function start() {
  const standin = await spawnListening(path.join(native, 'tools/openai-standin/openai_standin'), ['--listen', '127.0.0.1:0']);
  children.push(standin.child);
  const keygen = spawnSync(path.join(native, 'server/tokenmeter'), ['keygen', '--out', path.join(work, 'key.json')]);
  if (keygen.status !== 0) throw new Error(String(keygen.stderr));
  fs.writeFileSync(path.join(work, 'config.json'), JSON.stringify({
    db: `sqlite:${path.join(work, 'ledger.db')}`,
    jwt_secret: 'bench-jwt-secret-0123456789abcdefghijklmn',
    service_keys: serviceKey,
    signing_key_file: path.join(work, 'key.json'),
    upstreams: [{ models: ['gpt-4o-mini'], base_url: `${standin.url}/v1` }],
  }));
  const server = await spawnListening(path.join(native, 'server/tokenmeter'),
    ['serve', '--config', path.join(work, 'config.json'), '--listen', '127.0.0.1:0']);
  children.push(server.child);
  return { direct: standin.url, gateway: server.url };
}

// One call: total time, and time to the first body byte (for a stream, its
// first event).
function call(agent, base, body, headers) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    let first = 0n;
    const request = http.request(`${base}/v1/chat/completions`, {
      method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers },
    }, (response) => {
      response.on('data', () => { if (first === 0n) first = process.hrtime.bigint(); });
      response.on('end', () => {
        if (response.statusCode !== 200) return reject(new Error(`HTTP ${response.statusCode}`));
        const ended = process.hrtime.bigint();
        resolve({ total: Number(ended - started) / 1e6, firstByte: Number(first - started) / 1e6 });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

async function run(base, stream, gateway) {
  const body = JSON.stringify({
    model: 'gpt-4o-mini', max_tokens: 16, ...(stream ? { stream: true } : {}),
    messages: [{ role: 'user', content: 'What does a metering gateway add to each call?' }],
  });
  // Fresh connections per case: a server closes keep-alive connections left
  // idle past its timeout (tokenmeter's edge: 5 s) while another case runs.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  const samples = [];
  const deadline = Date.now() + seconds * 1000;
  const began = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
    const headers = gateway ? { authorization: `Bearer ${serviceKey}`, 'x-tokenmeter-user': `bench-${i}` } : {};
    for (let warm = 0; warm < 3; warm += 1) await call(agent, base, body, headers);
    while (Date.now() < deadline) samples.push(await call(agent, base, body, headers));
  }));
  const elapsed = Number(process.hrtime.bigint() - began) / 1e9;
  agent.destroy();
  const at = (values, q) => values[Math.min(values.length - 1, Math.floor(q * values.length))];
  const totals = samples.map((s) => s.total).sort((a, b) => a - b);
  const firsts = samples.map((s) => s.firstByte).sort((a, b) => a - b);
  return { p50: at(totals, 0.5), p99: at(totals, 0.99), ttfb: at(firsts, 0.5), rps: samples.length / elapsed, n: samples.length };
}

const { direct, gateway } = await start();
const fixed = (n) => n.toFixed(2);
console.log(`gateway vs direct to the OpenAI stand-in: ${concurrency} clients, ${seconds} s per case, ${os.cpus().length} cores`);
console.log('case        path      p50 ms   p99 ms  TTFB p50 ms     req/s');
for (const stream of [false, true]) {
  const straight = await run(direct, stream, false);
  const metered = await run(gateway, stream, true);
  const name = stream ? 'stream' : 'completion';
  for (const [label, r] of [['direct', straight], ['gateway', metered]]) {
    console.log(`${name.padEnd(11)} ${label.padEnd(8)} ${fixed(r.p50).padStart(7)} ${fixed(r.p99).padStart(8)} ${fixed(r.ttfb).padStart(12)} ${r.rps.toFixed(0).padStart(9)}`);
  }
  console.log(`${name.padEnd(11)} added    ${fixed(metered.p50 - straight.p50).padStart(7)} ${fixed(metered.p99 - straight.p99).padStart(8)} ${fixed(metered.ttfb - straight.ttfb).padStart(12)}`);
  console.log(`${name.padEnd(11)} ratio    ${fixed(metered.p50 / straight.p50).padStart(7)}x ${fixed(metered.p99 / straight.p99).padStart(7)}x ${fixed(metered.ttfb / straight.ttfb).padStart(11)}x ${fixed(metered.rps / straight.rps).padStart(8)}x (gateway / direct)`);
}
process.exit(0);
