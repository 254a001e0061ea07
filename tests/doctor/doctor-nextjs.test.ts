/**
 * `herald doctor` against a real Next.js (the version installed at the repo root), not a stand-in: `next build` then
 * `next start`, as in production. A path no rewrite covers, a rewrite to a running Herald (step 2 names Next.js, and
 * the API check finds Herald's own address without --api-url), and the same rewrite once Herald is stopped.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
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
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NEXT_TELEMETRY_DISABLED: '1' };
  // --webpack: Turbopack refuses a node_modules reached through a symlink outside the project root. The rewrite's
  // destination is fixed here, at build time (it goes into .next/routes-manifest.json).
  const build = spawnSync(process.execPath, [NEXT_BIN, 'build', '--webpack'], { cwd: dir, env, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`next build failed:\n${build.stdout}\n${build.stderr}`);
  nextPort = await freePort();
  nextProc = spawn(process.execPath, [NEXT_BIN, 'start', '-p', String(nextPort), '-H', '127.0.0.1'], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let log = '';
  nextProc.stdout?.on('data', (d: Buffer) => (log += d));
  nextProc.stderr?.on('data', (d: Buffer) => (log += d));
  const deadline = Date.now() + 60_000;
  while (!/Ready in/.test(log)) {
    if (nextProc.exitCode !== null || Date.now() > deadline) throw new Error(`next start did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  if (nextProc?.pid && nextProc.exitCode === null) {
    // End the process group this test started (next start may run its server in a child process).
    process.kill(-nextProc.pid, 'SIGTERM');
    await new Promise((r) => nextProc!.once('exit', r));
  }
  await herald?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI's doctor in `cwd` (the app's directory: where a user runs `npx herald doctor`). */
function doctor(args: string[], cwd = ROOT): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'doctor', ...args], {
      cwd,
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

test('next start with no rewrite for the path is recognised as Next.js by its headers', async () => {
  const r = await doctor([`ws://127.0.0.1:${nextPort}/socket`, '--timeout', '30s', '--scan-ports', String(heraldPort)]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /answered 404 from Next\.js \(X-Powered-By: Next\.js\), not Herald/);
  assert.match(r.stdout, new RegExp(`destination: 'http://127\\.0\\.0\\.1:${heraldPort}/socket'`));
  assert.match(r.stdout, /nextjs_no_rewrite/);
});

test("run in the app's directory, the doctor says step 2 goes through Next.js and finds Herald's API from the app's rewrite", async () => {
  // --scan-ports none: Herald's own address can only come from .next/routes-manifest.json.
  const args = [`ws://127.0.0.1:${nextPort}/ws`, '--user', '7', '--api-key', 'k', '--timeout', '30s'];
  const r = await doctor([...args, '--scan-ports', 'none'], dir);
  assert.equal(r.code, 0, r.stdout);
  assert.match(
    r.stdout,
    /ok +2 HTTP +GET http:\/\/127\.0\.0\.1:\d+\/ws answered 426 with X-Herald-Version: \S+ through Next\.js/,
  );
  assert.match(
    r.stdout,
    /Next\.js's image optimizer answered GET \/_next\/image there \(400 "url" parameter is required\)/,
  );
  assert.match(
    r.stdout,
    new RegExp(
      `Herald itself: ws://127\\.0\\.0\\.1:${heraldPort}/ws, the rewrite of /ws in \\.next/routes-manifest\\.json`,
    ),
  );
  assert.match(r.stdout, /ok +3 Upgrade +101 Switching Protocols/);
  assert.match(r.stdout, /ok +5 Round trip .*published through the HTTP API, delivered in \d+ ms/);
});

test('elsewhere, the doctor finds Herald for the API on the ports it looks at, or names the flag to pass', async () => {
  const args = [`ws://127.0.0.1:${nextPort}/ws`, '--user', '7', '--api-key', 'k', '--timeout', '30s'];
  const found = await doctor([...args, '--scan-ports', String(heraldPort)]);
  assert.equal(found.code, 0, found.stdout);
  assert.match(
    found.stdout,
    new RegExp(`Herald itself: ws://127\\.0\\.0\\.1:${heraldPort}/ws, found on a nearby port`),
  );
  assert.match(found.stdout, /ok +5 Round trip .*published through the HTTP API/);

  // Nowhere to find it: the API is not POSTed to the app's origin; a warning names --api-url.
  const lost = await doctor([...args, '--scan-ports', 'none', '--json']);
  assert.equal(lost.code, 0, lost.stdout);
  const report = JSON.parse(lost.stdout) as { steps: { step: string; status: string; code: string; fix?: string }[] };
  const http = report.steps.find((s) => s.step === 'http')!;
  assert.equal(http.code, 'herald_ok');
  const rt = report.steps.find((s) => s.step === 'roundtrip')!;
  assert.equal(rt.status, 'warn');
  assert.equal(rt.code, 'api_address_unknown');
  assert.match(rt.fix ?? '', /--api-url http:\/\/127\.0\.0\.1:3002/);

  const given = await doctor([...args, '--scan-ports', 'none', '--api-url', `http://127.0.0.1:${heraldPort}`]);
  assert.equal(given.code, 0, given.stdout);
  assert.match(given.stdout, /ok +5 Round trip .*published through the HTTP API/);
});

test("next start with a rewrite to a stopped Herald: the rewrite's upstream is down", async () => {
  await herald!.close();
  const r = await doctor([`ws://127.0.0.1:${nextPort}/ws`, '--timeout', '30s', '--scan-ports', 'none']);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /answered a bare 500 "Internal Server Error"/);
  assert.match(r.stdout, /Failed to proxy/);
  assert.match(r.stdout, /proxy_upstream_down/);
});
