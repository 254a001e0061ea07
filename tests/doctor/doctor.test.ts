/**
 * `herald doctor` against each broken setup, built for real on loopback: the CLI runs as a child process (its exit
 * code and output are the contract), the servers it diagnoses run here or as child processes (nginx).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, SignJWT } from 'jose';
import { createHerald, type Herald } from '../../packages/server/src/index.js';

const CLI = fileURLToPath(new URL('../../packages/server/dist/cli/main.js', import.meta.url));
const NGINX = '/usr/sbin/nginx';
const SECRET = 'doctor-test-secret';
const API_KEY = 'doctor-test-key';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface HeraldUnderTest {
  herald: Herald;
  port: number;
  url: string;
}

async function startHerald(
  env: Record<string, string> = {},
  allowSubscribe = true,
  namespaces: Record<string, { allow_subscribe_for_client: boolean }> = {},
): Promise<HeraldUnderTest> {
  const herald = createHerald({
    // An empty value is "not set" (HERALD_API_KEY: '' turns the HTTP API off).
    env: { HERALD_TOKEN_SECRET: SECRET, HERALD_API_KEY: API_KEY, ...env },
    logger: false,
    config: { channel: { withoutNamespace: { allow_subscribe_for_client: allowSubscribe }, namespaces } },
  });
  const addr = await herald.listen(0, '127.0.0.1');
  cleanups.push(() => herald.close());
  return { herald, port: addr.port, url: `ws://127.0.0.1:${addr.port}/ws` };
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Listens on loopback; the cleanup ends every connection first (held ones too), so close() cannot wait forever. */
async function listen(server: Server | net.Server): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: net.Socket) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return (server.address() as net.AddressInfo).port;
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `herald doctor` with a clean environment (nothing inherited from the shell running the tests). */
function doctor(args: string[], env: Record<string, string> = {}, killAfterMs = 30_000): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'doctor', ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** A connection token for user 42; `exp: null` leaves exp out. */
function token(
  claims: Record<string, unknown>,
  secret = SECRET,
  exp: number | null = Math.floor(Date.now() / 1000) + 300,
): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject('42').setIssuedAt();
  if (exp !== null) jwt = jwt.setExpirationTime(exp);
  return jwt.sign(new TextEncoder().encode(secret));
}

function assertNoColour(out: string): void {
  assert.doesNotMatch(out, /\x1b\[/, 'no ANSI colour when stdout is not a TTY');
}

interface JsonReport {
  ok: boolean;
  failed: { step: string; code: string } | null;
  steps: { step: string; status: string; code: string; saw: string }[];
}

/** The --json document (the whole output in the message when it is not one). */
function report(r: CliResult): JsonReport {
  try {
    return JSON.parse(r.stdout) as JsonReport;
  } catch {
    throw new Error(`doctor --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** The failed step's code and what the doctor saw there, from a run that must exit 1. */
function failure(r: CliResult): { step: string; code: string; saw: string } {
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const j = report(r);
  assert.ok(j.failed, `a step failed: ${r.stdout}`);
  const step = j.steps.find((s) => s.status === 'fail');
  return { ...j.failed, saw: step?.saw ?? '' };
}

/**
 * A TCP listener that never accepts: a child process listens with a backlog of 1 and then blocks its only thread
 * (Atomics.wait, no CPU), so connections pile up in the kernel's accept queue and, once it is full, the kernel drops
 * further SYNs unanswered: to a client that is the same silence as a firewall dropping packets.
 */
async function stuckListener(): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
    const s = require('node:net').createServer();
    s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      // Synchronously, in the listen callback: the event loop never turns, so not one connection is ever accepted.
      require('node:fs').writeSync(1, s.address().port + '\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);
      process.exit(0); // bounded: never outlives a test run that lost track of it by more than two minutes
    });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  cleanups.push(() => {
    child.kill('SIGKILL');
  });
  return new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    child.once('exit', (code) => reject(new Error(`the stuck listener exited (${code})`)));
  });
}

/** Opens one connection to `port`: true when the handshake completed within `ms`, false when it got no answer. */
function connectsWithin(port: number, ms: number): Promise<boolean> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  cleanups.push(() => {
    s.destroy();
  });
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Connects until one attempt is dropped (at most 8 attempts): how many connections the stuck listener's queue held. */
async function fillQueue(port: number): Promise<number> {
  for (let held = 0; held < 8; held++) if (!(await connectsWithin(port, 500))) return held;
  throw new Error(`port ${port}: 8 connections and none dropped; the accept queue never filled`);
}

test('the built CLI exists (run npm run build first)', () => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run npm run build`);
});

test('a healthy setup passes every step end to end and exits 0', async () => {
  const h = await startHerald();
  const r = await doctor([h.url, '--user', '42', '--api-key', API_KEY], { HERALD_TOKEN_SECRET: SECRET });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const step of ['1 TCP', '2 HTTP', '3 Upgrade', '4 Connect', '5 Round trip'])
    assert.match(r.stdout, new RegExp(`ok +${step}`));
  assert.match(r.stdout, /X-Herald-Version: 0\.1\.0/);
  assert.match(r.stdout, /101 Switching Protocols/);
  assert.match(r.stdout, /connected as user "42"/);
  assert.match(r.stdout, /published through the HTTP API, delivered in \d+ ms/);
  assert.match(r.stdout, /Every step passed/);
  assertNoColour(r.stdout);
});

test('--json reports every step with stable codes and the round-trip latency', async () => {
  const h = await startHerald();
  const t = await token({});
  const r = await doctor([h.url, '--token', t, '--json'], { HERALD_API_KEY: API_KEY });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const j = JSON.parse(r.stdout) as {
    ok: boolean;
    exitCode: number;
    steps: { step: string; status: string; code: string; details?: { latencyMs?: number } }[];
  };
  assert.equal(j.ok, true);
  assert.equal(j.exitCode, 0);
  assert.deepEqual(
    j.steps.map((s) => s.code),
    ['tcp_ok', 'herald_ok', 'upgrade_ok', 'connected', 'round_trip_ok'],
  );
  assert.equal(typeof j.steps[4]!.details?.latencyMs, 'number');
});

test('Herald on one port and the URL on another: names where Herald is', async () => {
  const h = await startHerald();
  const wrong = await closedPort();
  const r = await doctor([`ws://127.0.0.1:${wrong}/ws`, '--timeout', '2s'], { WS_PORT: String(h.port) });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAIL 1 TCP/);
  assert.match(r.stdout, new RegExp(`nothing listens on 127\\.0\\.0\\.1:${wrong}`));
  assert.match(r.stdout, new RegExp(`Herald is at ws://127\\.0\\.0\\.1:${h.port}/ws`));
  assert.match(r.stdout, /wrong_port/);
  assert.match(r.stdout, /- +2 HTTP +not run/);
});

test('nothing anywhere: says nothing listens and how to start Herald', async () => {
  const wrong = await closedPort();
  // Other Heralds may run on this machine's usual ports: look only where none is.
  const r = await doctor([
    `ws://127.0.0.1:${wrong}/ws`,
    '--json',
    '--timeout',
    '1s',
    '--scan-ports',
    String(await closedPort()),
  ]);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.stdout) as { failed: { step: string; code: string }; steps: { fix: string }[] };
  assert.deepEqual(j.failed, { step: 'tcp', code: 'nothing_listening' });
  assert.match(j.steps[0]!.fix, /herald serve/);
});

/** Stands in for `next dev`: 404 pages with Next's headers, and upgrades on unmatched paths left hanging. */
async function nextStandIn(): Promise<number> {
  const server = createHttpServer((req, res) => {
    res.writeHead(404, {
      'x-powered-by': 'Next.js',
      'content-type': 'text/html; charset=utf-8',
      vary: 'RSC, Next-Router-State-Tree, Next-Router-Prefetch',
    });
    res.end(
      '<!DOCTYPE html><html><head><script src="/_next/static/chunks/webpack.js" async=""></script></head><body>404: This page could not be found.</body></html>',
    );
  });
  const held: net.Socket[] = [];
  server.on('upgrade', (_req, socket: net.Socket) => held.push(socket));
  cleanups.push(() => held.forEach((s) => s.destroy()));
  return listen(server);
}

test('the Next.js dev server answering 404 on /ws: wrong server, with the rewrite and the direct-URL alternative', async () => {
  const h = await startHerald();
  const next = await nextStandIn();
  const r = await doctor([`ws://127.0.0.1:${next}/ws`, '--origin', `http://127.0.0.1:${next}`, '--timeout', '2s'], {
    WS_PORT: String(h.port),
  });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /ok +1 TCP/);
  assert.match(
    r.stdout,
    /FAIL 2 HTTP +GET http:\/\/127\.0\.0\.1:\d+\/ws answered 404 from Next\.js \(X-Powered-By: Next\.js\), not Herald/,
  );
  assert.match(r.stdout, /async rewrites\(\)/);
  assert.match(r.stdout, new RegExp(`source: '/ws', destination: 'http://127\\.0\\.0\\.1:${h.port}/ws'`));
  assert.match(r.stdout, new RegExp(`NEXT_PUBLIC_HERALD_URL=ws://127\\.0\\.0\\.1:${h.port}/ws`));
  assert.match(r.stdout, new RegExp(`HERALD_ALLOWED_ORIGINS=http://127\\.0\\.0\\.1:${next}`));
  assert.match(r.stdout, /nextjs_no_rewrite/);
});

/**
 * A Next.js-like app server that rewrites /ws to `heraldPort` as a rewrite does (the GET's answer passed through with
 * nothing of its own, the upgrade piped), and answers every other path with a 404 carrying Next's headers; it has no
 * image optimizer, so the doctor has to fall back on its 404 page.
 */
async function nextRewriteStandIn(heraldPort: number): Promise<number> {
  const server = createHttpServer((req, res) => {
    if ((req.url ?? '/').split('?')[0] === '/ws') {
      const up = httpRequest({ host: '127.0.0.1', port: heraldPort, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, { ...r.headers, vary: 'Accept-Encoding' });
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end();
      return;
    }
    res.writeHead(404, { 'x-powered-by': 'Next.js', 'content-type': 'text/html' });
    res.end('<!DOCTYPE html><html><body>404: This page could not be found.</body></html>');
  });
  server.on('upgrade', (req, socket, head) => {
    const upstream = net.connect(heraldPort, '127.0.0.1', () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(lines.join('\r\n') + '\r\n\r\n');
      upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    const end = () => {
      socket.destroy();
      upstream.destroy();
    };
    upstream.on('error', end);
    socket.on('error', end);
  });
  return listen(server);
}

test('Herald answering through a Next.js rewrite: step 2 says so, and the API goes to the Herald found, never to the app', async () => {
  const h = await startHerald();
  const next = await nextRewriteStandIn(h.port);
  const url = `ws://127.0.0.1:${next}/ws`;
  const found = await doctor([url, '--user', '42', '--api-key', API_KEY, '--scan-ports', String(h.port)], {
    HERALD_TOKEN_SECRET: SECRET,
  });
  assert.equal(found.code, 0, found.stdout + found.stderr);
  assert.match(
    found.stdout,
    new RegExp(
      `ok +2 HTTP +GET http://127\\.0\\.0\\.1:${next}/ws answered 426 with X-Herald-Version: 0\\.1\\.0 through Next\\.js \\(\\d+ ms\\); ` +
        `GET /_next/herald-doctor there answered with X-Powered-By: Next\\.js; Herald itself: ws://127\\.0\\.0\\.1:${h.port}/ws, found on a nearby port`,
    ),
  );
  assert.match(found.stdout, /ok +5 Round trip .*published through the HTTP API, delivered in \d+ ms/);

  // Another Herald on the port looked at: it takes the publish but the socket's Herald never sees it.
  const other = await startHerald();
  const wrong = await doctor(
    [url, '--user', '42', '--api-key', API_KEY, '--scan-ports', String(other.port), '--json', '--timeout', '1s'],
    {
      HERALD_TOKEN_SECRET: SECRET,
    },
  );
  assert.equal(wrong.code, 0, wrong.stdout + wrong.stderr);
  const step = report(wrong).steps.find((x) => x.step === 'roundtrip')!;
  assert.equal(step.status, 'warn');
  assert.equal(step.code, 'publication_not_delivered');
  assert.match(step.saw, /accepted \(offset 0\) by the Herald found on a nearby port but nothing arrived/);
});

test('Herald answering directly: step 2 names nothing in front of it', async () => {
  const h = await startHerald();
  const r = await doctor([h.url, '--user', '42', '--api-key', API_KEY, '--scan-ports', 'none'], {
    HERALD_TOKEN_SECRET: SECRET,
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /ok +2 HTTP +GET \S+ answered 426 with X-Herald-Version: 0\.1\.0 \(\d+ ms\)\n/);
});

test('a server that accepts TCP and never answers: the hang, diagnosed within the timeout', async () => {
  const held: net.Socket[] = [];
  const server = net.createServer((s) => held.push(s));
  cleanups.push(() => held.forEach((s) => s.destroy()));
  const port = await listen(server);
  const r = await doctor([`ws://127.0.0.1:${port}/ws`, '--timeout', '1s']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAIL 2 HTTP +127\.0\.0\.1:\d+ accepted the TCP connection but sent nothing in 1000 ms/);
  assert.match(r.stdout, /\(asked 2 times\)/);
  assert.match(r.stdout, /unmatched path behind Next\.js/);
  assert.match(r.stdout, /no_answer/);
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
});

test('an Origin not in HERALD_ALLOWED_ORIGINS: names the origin sent and the line to add', async () => {
  const h = await startHerald({ HERALD_ALLOWED_ORIGINS: 'http://app.example.test' });
  const r = await doctor([h.url, '--origin', 'http://evil.example.test', '--user', '42'], {
    HERALD_TOKEN_SECRET: SECRET,
    HERALD_ALLOWED_ORIGINS: 'http://app.example.test',
  });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /ok +2 HTTP/);
  assert.match(
    r.stdout,
    /FAIL 3 Upgrade +Herald refused the upgrade with 403: sent Origin http:\/\/evil\.example\.test/,
  );
  assert.match(r.stdout, /HERALD_ALLOWED_ORIGINS=http:\/\/app\.example\.test,http:\/\/evil\.example\.test/);
  assert.match(r.stdout, /origin_not_allowed/);
});

test('an allowed Origin (taken from HERALD_ALLOWED_ORIGINS when --origin is absent) passes the upgrade', async () => {
  const h = await startHerald({ HERALD_ALLOWED_ORIGINS: 'http://app.example.test' });
  const r = await doctor([h.url, '--user', '42'], {
    HERALD_TOKEN_SECRET: SECRET,
    HERALD_ALLOWED_ORIGINS: 'http://app.example.test',
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\(Origin: http:\/\/app\.example\.test\)/);
});

test('an expired token is named as expired, with when', async () => {
  const h = await startHerald();
  const t = await token({}, SECRET, Math.floor(Date.now() / 1000) - 3600);
  const r = await doctor([h.url, '--token', t]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAIL 4 Connect +Herald answered error 109 \(token expired\): exp is .*, 60 min ago/);
  assert.match(r.stdout, /token_expired/);
});

test("a token from another secret: signed with a different secret than this server's", async () => {
  const h = await startHerald();
  const t = await token({}, 'the-apps-other-secret');
  const r = await doctor([h.url, '--token', t], { HERALD_TOKEN_SECRET: 'the-apps-other-secret' });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /closed the connection with 3500 "invalid token: bad signature/);
  assert.match(r.stdout, /signed with a different secret than this server's/);
  assert.match(r.stdout, /verifies with your local secret \(HERALD_TOKEN_SECRET\), so Herald runs with another one/);
  assert.match(r.stdout, /token_bad_signature/);
});

test('a token without exp is named as missing exp, with both fixes', async () => {
  const h = await startHerald();
  const t = await token({}, SECRET, null);
  const r = await doctor([h.url, '--token', t]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /3500 "invalid token: no exp claim/);
  assert.match(r.stdout, /setExpirationTime/);
  assert.match(r.stdout, /HERALD_TOKEN_REQUIRE_EXP=false/);
  assert.match(r.stdout, /token_missing_exp/);
});

test('wrong aud and wrong iss are each named', async () => {
  const h = await startHerald({ HERALD_TOKEN_AUDIENCE: 'herald', HERALD_TOKEN_ISSUER: 'my-app' });
  const badAud = await token({ aud: 'someone-else', iss: 'my-app' });
  const a = await doctor([h.url, '--token', badAud, '--json']);
  assert.equal(a.code, 1);
  assert.equal((JSON.parse(a.stdout) as { failed: { code: string } }).failed.code, 'token_bad_audience');
  assert.match(a.stdout, /aud is \\"someone-else\\"/);
  const badIss = await token({ aud: 'herald', iss: 'another-app' });
  const i = await doctor([h.url, '--token', badIss, '--json']);
  assert.equal(i.code, 1);
  assert.equal((JSON.parse(i.stdout) as { failed: { code: string } }).failed.code, 'token_bad_issuer');
});

test('no token on a server that needs one: token_required', async () => {
  const h = await startHerald();
  const r = await doctor([h.url]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /FAIL 4 Connect +Herald answered error 101/);
  assert.match(r.stdout, /--user ID with HERALD_TOKEN_SECRET/);
});

test('a namespace that refuses client subscribes: a warning with --token, a minted subscription token with --user', async () => {
  const h = await startHerald({}, false);
  const t = await token({});
  const w = await doctor([h.url, '--token', t]);
  assert.equal(w.code, 0, w.stdout + w.stderr);
  assert.match(w.stdout, /warn 5 Round trip +subscribe to herald-doctor-[0-9a-f]+ refused with 103/);
  assert.match(w.stdout, /allow_subscribe_for_client/);
  const wj = report(await doctor([h.url, '--token', t, '--json']));
  assert.equal(wj.failed, null);
  assert.deepEqual(wj.steps.map((s) => [s.code, s.status]).at(-1), ['subscribe_not_allowed', 'warn']);
  const m = await doctor([h.url, '--user', '42', '--api-key', API_KEY], { HERALD_TOKEN_SECRET: SECRET });
  assert.equal(m.code, 0, m.stdout + m.stderr);
  assert.match(
    m.stdout,
    /ok +5 Round trip +subscribed to \S+ in \d+ ms \(with a minted subscription token\); published through the HTTP API/,
  );
});

test('a wrong API key fails the round trip with api_key_wrong', async () => {
  const h = await startHerald();
  const r = await doctor([h.url, '--user', '42', '--api-key', 'not-the-key'], { HERALD_TOKEN_SECRET: SECRET });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAIL 5 Round trip .*answered 401/);
  assert.match(r.stdout, /api_key_wrong/);
});

test('wss:// on a plain port: TLS on a plain port, use ws://', async () => {
  const h = await startHerald();
  const r = await doctor([`wss://127.0.0.1:${h.port}/ws`, '--timeout', '2s']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAIL 2 HTTP +wss:\/\/ on 127\.0\.0\.1:\d+: the TLS handshake failed/);
  assert.match(r.stdout, new RegExp(`Use ws://127\\.0\\.0\\.1:${h.port}/ws`));
  assert.match(r.stdout, /tls_on_plain_port/);
});

test('ws:// on a TLS port: use wss://', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'doctor-tls-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const made = spawnSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
  ]);
  assert.equal(made.status, 0, made.stderr.toString());
  const { readFileSync } = await import('node:fs');
  const server = createTlsServer(
    { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
    (_req, res) => res.end('hi'),
  );
  const port = await listen(server);
  const r = await doctor([`ws://127.0.0.1:${port}/ws`, '--timeout', '2s']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /a TLS handshake there succeeds/);
  assert.match(r.stdout, new RegExp(`Use wss://127\\.0\\.0\\.1:${port}/ws`));
  assert.match(r.stdout, /plain_on_tls_port/);
  // And wss:// to it: the self-signed certificate is refused as a browser would refuse it.
  const w = await doctor([`wss://127.0.0.1:${port}/ws`, '--timeout', '2s']);
  assert.equal(w.code, 1, w.stdout + w.stderr);
  assert.match(
    w.stdout,
    /FAIL 2 HTTP +the TLS handshake with 127\.0\.0\.1:\d+ failed: (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_CERT_ALTNAME_INVALID)/,
  );
  assert.match(w.stdout, /tls_certificate/);
});

test('bad arguments exit 2 with the usage', async () => {
  const r = await doctor(['ftp://example.test/ws']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not a WebSocket URL/);
  const u = await doctor(['ws://127.0.0.1:1/ws', '--user', '42']);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /--user needs the token secret/);
});

test('a listener whose accept queue is full drops the TCP handshake: tcp_timeout, within the timeout', async () => {
  const port = await stuckListener();
  assert.ok((await fillQueue(port)) >= 1, 'the queue held at least one connection before dropping');
  const r = await doctor([`ws://127.0.0.1:${port}/ws`, '--timeout', '1s', '--json']);
  const f = failure(r);
  assert.deepEqual([f.step, f.code], ['tcp', 'tcp_timeout']);
  assert.match(f.saw, new RegExp(`no TCP answer from 127\\.0\\.0\\.1:${port} \\(timed out\\)`));
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
});

test('an address the kernel opens no TCP connection to (the loopback broadcast address): tcp_error with the errno', async () => {
  // connect() to a broadcast address fails at once with ENETUNREACH: no packet leaves the machine.
  const f = failure(await doctor(['ws://127.255.255.255:3002/ws', '--timeout', '1s', '--json']));
  assert.deepEqual([f.step, f.code], ['tcp', 'tcp_error']);
  assert.equal(f.saw, 'cannot connect to 127.255.255.255:3002: ENETUNREACH');
});

test("a server that takes step 1's connection and is full for the next one (overloaded): http_connect_error, run again", async () => {
  // Learn how many connections a stuck listener's queue holds, then leave a second one exactly one place: the
  // doctor's TCP check takes it (the connection stays queued after the doctor closes it), and its GET is dropped.
  const places = await fillQueue(await stuckListener());
  const port = await stuckListener();
  for (let i = 0; i < places - 1; i++)
    assert.ok(await connectsWithin(port, 2000), `queued connection ${i + 1} of ${places - 1}`);
  const r = await doctor([`ws://127.0.0.1:${port}/ws`, '--timeout', '1s', '--scan-ports', 'none', '--json']);
  const f = failure(r);
  assert.deepEqual([f.step, f.code], ['http', 'http_connect_error']);
  assert.equal(report(r).steps[0]!.code, 'tcp_ok');
  assert.equal(f.saw, `could not reconnect to 127.0.0.1:${port}: ETIMEDOUT`);
});

test('a connection token for a JWKS URL that does not answer: Herald replies 100 and the doctor says connect_error', async () => {
  const h = await startHerald({
    HERALD_TOKEN_JWKS_URL: `http://127.0.0.1:${await closedPort()}/.well-known/jwks.json`,
  });
  const { privateKey } = await generateKeyPair('RS256');
  const t = await new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: 'doctor-key' })
    .setSubject('42')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey);
  const f = failure(await doctor([h.url, '--token', t, '--json']));
  assert.deepEqual([f.step, f.code], ['connect', 'connect_error']);
  assert.match(f.saw, /^Herald answered error 100: /);
});

test('--channel in a namespace the server does not have: unknown_namespace (102)', async () => {
  const h = await startHerald();
  const f = failure(
    await doctor([h.url, '--user', '42', '--channel', 'nowhere:doctor', '--json'], { HERALD_TOKEN_SECRET: SECRET }),
  );
  assert.deepEqual([f.step, f.code], ['roundtrip', 'unknown_namespace']);
  assert.match(f.saw, /^subscribe to nowhere:doctor refused with 102: .*namespace "nowhere" is not configured/);
});

test('a server without an API key: the publish gets 503 and the doctor says api_off', async () => {
  const h = await startHerald({ HERALD_API_KEY: '' });
  const f = failure(
    await doctor([h.url, '--user', '42', '--api-key', API_KEY, '--json'], { HERALD_TOKEN_SECRET: SECRET }),
  );
  assert.deepEqual([f.step, f.code], ['roundtrip', 'api_off']);
  assert.match(f.saw, /POST http:\/\/127\.0\.0\.1:\d+\/api\/publish answered 503: .*the HTTP API is off/);
});

test('--api-url where nothing listens: api_unreachable, a failure since the address was given', async () => {
  const h = await startHerald();
  const nowhere = await closedPort();
  const f = failure(
    await doctor([h.url, '--user', '42', '--api-key', API_KEY, '--api-url', `http://127.0.0.1:${nowhere}`, '--json'], {
      HERALD_TOKEN_SECRET: SECRET,
    }),
  );
  assert.deepEqual([f.step, f.code], ['roundtrip', 'api_unreachable']);
  assert.match(f.saw, new RegExp(`POST http://127\\.0\\.0\\.1:${nowhere}/api/publish failed: ECONNREFUSED$`));
});

test("the API on another Herald whose config lacks the channel's namespace: that Herald refuses the publish, api_error", async () => {
  const ws = await startHerald({}, true, { chat: { allow_subscribe_for_client: true } });
  const api = await startHerald();
  const f = failure(
    await doctor(
      [
        ws.url,
        '--user',
        '42',
        '--channel',
        'chat:doctor',
        '--api-key',
        API_KEY,
        '--api-url',
        `http://127.0.0.1:${api.port}`,
        '--json',
      ],
      { HERALD_TOKEN_SECRET: SECRET },
    ),
  );
  assert.deepEqual([f.step, f.code], ['roundtrip', 'api_error']);
  assert.match(f.saw, /^subscribed to chat:doctor .*answered \d{3}: \{"error":\{"code":102,/);
});

test('no API key and a namespace where the socket may not publish: subscribed, delivery not tested, subscribe_ok (exit 0)', async () => {
  const h = await startHerald();
  const r = await doctor([h.url, '--user', '42', '--json'], { HERALD_TOKEN_SECRET: SECRET });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const last = report(r).steps.at(-1)!;
  assert.deepEqual([last.code, last.status], ['subscribe_ok', 'pass']);
  assert.match(last.saw, /publish not tested: the socket may not publish here \(103 /);
});

test('a subscription token sent as the connection token: a 3500 reason without its own code, token_invalid', async () => {
  const h = await startHerald();
  const f = failure(await doctor([h.url, '--token', await token({ channel: 'news' }), '--json']));
  assert.deepEqual([f.step, f.code], ['connect', 'token_invalid']);
  assert.equal(f.saw, 'Herald closed the connection with 3500 "invalid token: subscription token used to connect"');
});

test('a connect command larger than HERALD_MAX_MESSAGE_SIZE: Herald closes with 1009, disconnected', async () => {
  const h = await startHerald({ HERALD_MAX_MESSAGE_SIZE: '128' });
  const f = failure(await doctor([h.url, '--user', '42', '--json'], { HERALD_TOKEN_SECRET: SECRET }));
  assert.deepEqual([f.step, f.code], ['connect', 'disconnected']);
  assert.match(f.saw, /^Herald closed the connection with 1009 /);
});

test('a token whose server-side channels already use HERALD_CHANNEL_LIMIT: the subscribe is refused with 106, subscribe_error', async () => {
  const h = await startHerald({ HERALD_CHANNEL_LIMIT: '1' });
  const f = failure(await doctor([h.url, '--token', await token({ channels: ['news'] }), '--json']));
  assert.deepEqual([f.step, f.code], ['roundtrip', 'subscribe_error']);
  assert.match(f.saw, /^subscribe to herald-doctor-[0-9a-f]+ refused with 106: limit exceeded/);
});

/** A Herald whose onSubscribe hook is the app's: `disconnect` makes it end the user's connections first. */
async function heraldWithStuckSubscribeHook(disconnect: boolean): Promise<HeraldUnderTest> {
  const herald: Herald = createHerald({
    env: { HERALD_TOKEN_SECRET: SECRET },
    logger: false,
    config: { channel: { withoutNamespace: { allow_subscribe_for_client: true } } },
    hooks: {
      onSubscribe: async (ctx) => {
        if (disconnect) await herald.call('disconnect', { user: ctx.user });
        // Waits on something that never answers (a database that is down, say).
        return new Promise<undefined>(() => {});
      },
    },
  });
  const addr = await herald.listen(0, '127.0.0.1');
  cleanups.push(() => herald.close());
  return { herald, port: addr.port, url: `ws://127.0.0.1:${addr.port}/ws` };
}

test('an onSubscribe hook that never returns: no reply to subscribe within the timeout, subscribe_timeout', async () => {
  const h = await heraldWithStuckSubscribeHook(false);
  const r = await doctor([h.url, '--user', '42', '--timeout', '1s', '--json'], { HERALD_TOKEN_SECRET: SECRET });
  const f = failure(r);
  assert.deepEqual([f.step, f.code], ['roundtrip', 'subscribe_timeout']);
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
});

test('an onSubscribe hook that disconnects the user: the connection closes instead of a reply, subscribe_disconnected', async () => {
  const h = await heraldWithStuckSubscribeHook(true);
  const f = failure(
    await doctor([h.url, '--user', '42', '--timeout', '2s', '--json'], { HERALD_TOKEN_SECRET: SECRET }),
  );
  assert.deepEqual([f.step, f.code], ['roundtrip', 'subscribe_disconnected']);
  assert.match(f.saw, /^Herald closed the connection with \d{4} "force disconnect" on subscribe$/);
});

// ---- Debian's nginx in front of Herald -------------------------------------------------------------------------

/** `wsExtra`: more directives in `location /ws` (a refusal of upgrades, a header forced on them). */
function startNginx(
  port: number,
  upstreamPort: number,
  passUpgrade: boolean,
  passHost = passUpgrade,
  wsExtra = '',
): Promise<{ proc: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'doctor-nginx-'));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d));
  const upgrade = passUpgrade
    ? 'proxy_http_version 1.1;\n      proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection "upgrade";'
    : '';
  const host = passHost ? 'proxy_set_header Host $http_host;' : '';
  writeFileSync(
    join(dir, 'nginx.conf'),
    `
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location /ws {
      proxy_pass http://127.0.0.1:${upstreamPort};
      ${upgrade}
      ${host}
      ${wsExtra}
    }
    location /api/ {
      proxy_pass http://127.0.0.1:${upstreamPort};
    }
  }
}
`,
  );
  const proc = spawn(
    NGINX,
    ['-e', 'stderr', '-c', join(dir, 'nginx.conf'), '-p', dir, '-g', `daemon off; pid ${dir}/nginx.pid;`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d));
  cleanups.push(async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 5000;
    const poll = () => {
      if (proc.exitCode !== null) return reject(new Error(`nginx exited: ${err}`));
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve({ proc, dir });
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nginx did not listen on ${port}: ${err}`));
        else setTimeout(poll, 50);
      });
    };
    poll();
  });
}

// .ci/run installs Debian's nginx and openssl ships with the machine: a missing one fails, never skips.
if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: apt-get install nginx (.ci/run does)`);

test('Debian nginx without the upgrade headers: the proxy strips Upgrade, with the nginx snippet', async () => {
  const h = await startHerald();
  const port = await closedPort();
  await startNginx(port, h.port, false);
  const r = await doctor([`ws://127.0.0.1:${port}/ws`, '--user', '42'], { HERALD_TOKEN_SECRET: SECRET });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /ok +2 HTTP +GET .* answered 426 with X-Herald-Version: 0\.1\.0 through nginx/);
  assert.match(r.stdout, /FAIL 3 Upgrade +the upgrade request reached Herald 0\.1\.0 as a plain GET: it answered 426/);
  assert.match(r.stdout, /Server: nginx/);
  assert.match(r.stdout, /proxy_http_version 1\.1;/);
  assert.match(r.stdout, /proxy_set_header Upgrade \$http_upgrade;/);
  assert.match(r.stdout, /proxy_set_header Connection "upgrade";/);
  assert.match(r.stdout, /proxy_strips_upgrade/);
});

test('Debian nginx with the upgrade headers: every step passes through it', async () => {
  const h = await startHerald();
  const port = await closedPort();
  await startNginx(port, h.port, true);
  const r = await doctor([`ws://127.0.0.1:${port}/ws`, '--user', '42', '--api-key', API_KEY], {
    HERALD_TOKEN_SECRET: SECRET,
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /ok +3 Upgrade +101 Switching Protocols/);
  assert.match(r.stdout, /ok +5 Round trip .*published through the HTTP API, delivered in \d+ ms/);
});

test('Debian nginx passing Upgrade but not Host: Origin refused, and the Host line named as the other fix', async () => {
  const h = await startHerald();
  const port = await closedPort();
  await startNginx(port, h.port, true, false);
  const r = await doctor([`ws://127.0.0.1:${port}/ws`, '--user', '42'], { HERALD_TOKEN_SECRET: SECRET });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAIL 3 Upgrade +Herald refused the upgrade with 403: sent Origin http:\/\/127\.0\.0\.1:\d+/);
  assert.match(r.stdout, new RegExp(`HERALD_ALLOWED_ORIGINS=http://127\\.0\\.0\\.1:${port}`));
  assert.match(r.stdout, /since nginx\/[\d.]+ is in between and rewrites Host, .*proxy_set_header Host \$http_host;/);
});

test('Herald closes the connection after its 426 when the request says Connection: close (proxies reuse it otherwise)', async () => {
  const h = await startHerald();
  const socket = net.connect(h.port, '127.0.0.1');
  let text = '';
  socket.on('data', (d: Buffer) => (text += d));
  socket.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${h.port}\r\nConnection: close\r\n\r\n`);
  const ended = await Promise.race([
    new Promise<boolean>((r) => socket.once('close', () => r(true))),
    new Promise<boolean>((r) => setTimeout(() => r(false), 3000)),
  ]);
  socket.destroy();
  assert.match(text, /^HTTP\/1\.1 426 /);
  assert.match(text, /connection: Upgrade, close/i);
  assert.equal(ended, true, 'the server should close the socket after the 426');
});

// The upgrade refused or ended in front of Herald. Plain GETs (no Upgrade header) still reach Herald, so step 2
// passes with its marker and the doctor gets to the upgrade.

test('nginx refusing upgrades with its own 403 (a WAF rule): forbidden_by_proxy', async () => {
  const h = await startHerald();
  const port = await closedPort();
  await startNginx(port, h.port, true, true, 'if ($http_upgrade) { return 403; }');
  const r = await doctor([`ws://127.0.0.1:${port}/ws`, '--user', '42', '--json'], { HERALD_TOKEN_SECRET: SECRET });
  const f = failure(r);
  assert.deepEqual([f.step, f.code], ['upgrade', 'forbidden_by_proxy']);
  assert.equal(report(r).steps[1]!.code, 'herald_ok');
  assert.match(
    f.saw,
    new RegExp(
      `^403 to the upgrade \\(Origin: http://127\\.0\\.0\\.1:${port}\\) from nginx/[\\d.]+, without Herald's marker`,
    ),
  );
});

test('nginx routing upgrades to an upstream that is down (502): upgrade_refused by something that is not Herald', async () => {
  const h = await startHerald();
  const port = await closedPort();
  await startNginx(
    port,
    h.port,
    true,
    true,
    `if ($http_upgrade) { proxy_pass http://127.0.0.1:${await closedPort()}; }`,
  );
  const f = failure(
    await doctor([`ws://127.0.0.1:${port}/ws`, '--user', '42', '--json'], { HERALD_TOKEN_SECRET: SECRET }),
  );
  assert.deepEqual([f.step, f.code], ['upgrade', 'upgrade_refused']);
  assert.match(f.saw, /^502 Bad Gateway to the upgrade from nginx\/[\d.]+: /);
});

test('nginx with the Upgrade and Connection values swapped (Upgrade: "upgrade"): Herald refuses with its 400, upgrade_refused', async () => {
  const h = await startHerald();
  const port = await closedPort();
  await startNginx(
    port,
    h.port,
    false,
    true,
    'proxy_http_version 1.1;\n      proxy_set_header Upgrade "upgrade";\n      proxy_set_header Connection "upgrade";',
  );
  const r = await doctor([`ws://127.0.0.1:${port}/ws`, '--user', '42', '--json'], { HERALD_TOKEN_SECRET: SECRET });
  const f = failure(r);
  assert.deepEqual([f.step, f.code], ['upgrade', 'upgrade_refused']);
  assert.equal(report(r).steps[1]!.code, 'herald_ok');
  assert.equal(f.saw, 'Herald refused the upgrade with 400 (rejected): expected Upgrade: websocket');
});

test('nginx closing upgrade requests without an answer (return 444): upgrade_failed', async () => {
  const h = await startHerald();
  const port = await closedPort();
  await startNginx(port, h.port, true, true, 'if ($http_upgrade) { return 444; }');
  const f = failure(
    await doctor([`ws://127.0.0.1:${port}/ws`, '--user', '42', '--json'], { HERALD_TOKEN_SECRET: SECRET }),
  );
  assert.deepEqual([f.step, f.code], ['upgrade', 'upgrade_failed']);
  assert.equal(f.saw, `the upgrade request (Origin: http://127.0.0.1:${port}) got a closed connection`);
});

test('nginx forcing the protobuf subprotocol on the upgrade: Herald closes the JSON connect with 3501, inappropriate_protocol', async () => {
  // The doctor (like a JSON client) never offers centrifuge-protobuf; only something in between that sets
  // Sec-WebSocket-Protocol makes Herald pick it, and Herald then closes the doctor's JSON text frame with 3501.
  const h = await startHerald();
  const port = await closedPort();
  await startNginx(port, h.port, true, true, 'proxy_set_header Sec-WebSocket-Protocol "centrifuge-protobuf";');
  const f = failure(
    await doctor([`ws://127.0.0.1:${port}/ws`, '--user', '42', '--json'], { HERALD_TOKEN_SECRET: SECRET }),
  );
  assert.deepEqual([f.step, f.code], ['connect', 'inappropriate_protocol']);
  assert.equal(f.saw, 'Herald closed the connection with 3501 "bad request: text frame on a protobuf connection"');
});
