// Starts a server process that takes its own port and says which: the node
// suites run `tokenmeter serve --listen 127.0.0.1:0` and the LemonSqueezy
// stand-in the same way, and read the port from the line each prints once
// it is bound ("tokenmeter: listening on http://127.0.0.1:PORT (db ...)",
// "lemonsqueezy_standin: listening on http://127.0.0.1:PORT (...)").
// Picking a free port first and handing it over is a race: another process
// can take the port between the probe closing it and the server binding it.
import { spawn } from 'node:child_process';

const listening = /listening on (http:\/\/[^\s:]+:(\d+))/;
const logBytesMax = 64 * 1024;

/**
 * @param {string} command
 * @param {string[]} args
 * @param {{ cwd?: string, env?: NodeJS.ProcessEnv, patienceMs?: number }} [options]
 *   patienceMs only guards against a hang: the line comes in milliseconds.
 * @returns {Promise<{ child: import('node:child_process').ChildProcess, url: string, port: number, log: () => string }>}
 */
export function spawnListening(command, args, { cwd, env, patienceMs = 60_000 } = {}) {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  // Both streams are read for the process's whole life (a full pipe would
  // block its writes); the tail is kept for error messages.
  let log = '';
  const keep = (chunk) => {
    log += chunk;
    if (log.length > logBytesMax) log = log.slice(-logBytesMax);
  };
  child.stderr.setEncoding('utf8').on('data', keep);
  const logOf = () => log;
  return new Promise((resolve, reject) => {
    let stdout = '';
    let found = false;
    const fail = (why) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')}: ${why}\n${log}`));
    };
    const timer = setTimeout(() => fail(`no "listening on" line within ${patienceMs} ms`), patienceMs);
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      keep(chunk);
      if (found) return;
      stdout += chunk;
      const match = listening.exec(stdout);
      if (!match) return;
      found = true;
      clearTimeout(timer);
      resolve({ child, url: match[1], port: Number(match[2]), log: logOf });
    });
    child.once('error', (error) => fail(error.message));
    child.once('exit', (code, signal) => {
      if (!found) fail(`exited (${signal ?? code}) before saying where it listens`);
    });
  });
}
