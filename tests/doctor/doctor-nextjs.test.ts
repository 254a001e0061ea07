/**
 * `herald doctor` against a real `next dev` (the version installed at the repo root), not a stand-in: a path no
 * rewrite covers, a rewrite to a running Herald, and the same rewrite once Herald is stopped.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHerald, type Herald } from '../../packages/server/src/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'packages/server/dist/cli/main.js');
const NEXT_BIN = join(ROOT, 'node_modules/next/dist/bin/next');
const SECRET = 'doctor-next-secret';
// Prerequisites are installed by `npm ci` (next is a workspace dependency); a missing one fails, never skips.
if (!existsSync(NEXT_BIN)) throw new Error(`${NEXT_BIN} is missing: run npm ci at the repository root`);

let herald: Herald | undefined;
let heraldPort = 0;
let nextPort = 0;
let nextProc: ChildProcess | undefined;
let dir = '';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

before(async () => {
  herald = createHerald({
    env: { HERALD_TOKEN_SECRET: SECRET, HERALD_API_KEY: 'k' },
    logger: false,
    config: { channel: { withoutNamespace: { allow_subscribe_for_client: true } } },
  });
  heraldPort = (await herald.listen(0, '127.0.0.1')).port;
  dir = mkdtempSync(join(tmpdir(), 'doctor-next-'));
  mkdirSync(join(dir, 'app'));
  writeFileSync(join(dir, 'package.json'), '{"private":true,"type":"module"}');
  writeFileSync(
    join(dir, 'app/layout.js'),
    'export default function L({ children }) { return <html><body>{children}</body></html>; }\n',
  );
  writeFileSync(join(dir, 'app/page.js'), 'export default function P() { return <p>home</p>; }\n');
  writeFileSync(
    join(dir, 'next.config.mjs'),
    `export default { async rewrites() { return [{ source: '/ws', destination: 'http://127.0.0.1:${heraldPort}/ws' }]; } };\n`,
  );
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  nextPort = await freePort();
  // --webpack: Turbopack refuses a node_modules reached through a symlink outside the project root.
  nextProc = spawn(process.execPath, [NEXT_BIN, 'dev', '--webpack', '-p', String(nextPort), '-H', '127.0.0.1'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NEXT_TELEMETRY_DISABLED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let log = '';
  nextProc.stdout?.on('data', (d: Buffer) => (log += d));
  nextProc.stderr?.on('data', (d: Buffer) => (log += d));
  const deadline = Date.now() + 60_000;
  while (!/Ready in/.test(log)) {
    if (nextProc.exitCode !== null || Date.now() > deadline) throw new Error(`next dev did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  if (nextProc?.pid && nextProc.exitCode === null) {
    // next dev runs its server in a child process: end the group this test started.
    process.kill(-nextProc.pid, 'SIGTERM');
    await new Promise((r) => nextProc!.once('exit', r));
  }
  await herald?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function doctor(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'doctor', ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HERALD_TOKEN_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}

// A generous timeout: next dev compiles its 404 page on the first request.
test('next dev with no rewrite for the path is recognised as Next.js by its headers', async () => {
  const r = await doctor([`ws://127.0.0.1:${nextPort}/socket`, '--timeout', '30s', '--scan-ports', String(heraldPort)]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /answered 404 from Next\.js \(X-Powered-By: Next\.js\), not Herald/);
  assert.match(r.stdout, new RegExp(`destination: 'http://127\\.0\\.0\\.1:${heraldPort}/socket'`));
  assert.match(r.stdout, /nextjs_no_rewrite/);
});

test('next dev with a rewrite to a running Herald passes every step through Next.js', async () => {
  const r = await doctor([
    `ws://127.0.0.1:${nextPort}/ws`,
    '--user',
    '7',
    '--api-key',
    'k',
    '--api-url',
    `http://127.0.0.1:${heraldPort}`,
    '--timeout',
    '30s',
  ]);
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /ok +3 Upgrade +101 Switching Protocols/);
  assert.match(r.stdout, /ok +5 Round trip/);
  // Without --api-url the API is looked for on Next's origin, which rewrites only /ws: a warning, not a failure.
  const g = await doctor([`ws://127.0.0.1:${nextPort}/ws`, '--user', '7', '--api-key', 'k', '--timeout', '30s']);
  assert.equal(g.code, 0, g.stdout);
  assert.match(g.stdout, /warn 5 Round trip .*POST http:\/\/127\.0\.0\.1:\d+\/api\/publish answered 404/);
  assert.match(g.stdout, /--api-url/);
});

test("next dev with a rewrite to a stopped Herald: the rewrite's upstream is down", async () => {
  await herald!.close();
  const r = await doctor([`ws://127.0.0.1:${nextPort}/ws`, '--timeout', '30s', '--scan-ports', 'none']);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /answered a bare 500 "Internal Server Error"/);
  assert.match(r.stdout, /Failed to proxy/);
  assert.match(r.stdout, /proxy_upstream_down/);
});
