/**
 * `herald doctor` against each broken setup, built for real on loopback: the CLI runs as a child process (its exit
 * code and output are the contract), the servers it diagnoses run here or as child processes (nginx).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
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

async function startHerald(env: Record<string, string> = {}, allowSubscribe = true): Promise<HeraldUnderTest> {
  const herald = createHerald({
    env: { HERALD_TOKEN_SECRET: SECRET, HERALD_API_KEY: API_KEY, ...env },
    logger: false,
    config: { channel: { withoutNamespace: { allow_subscribe_for_client: allowSubscribe } } },
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
  cleanups.push(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
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
function token(claims: Record<string, unknown>, secret = SECRET, exp: number | null = Math.floor(Date.now() / 1000) + 300): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject('42').setIssuedAt();
  if (exp !== null) jwt = jwt.setExpirationTime(exp);
  return jwt.sign(new TextEncoder().encode(secret));
}

function assertNoColour(out: string): void {
  assert.doesNotMatch(out, /\x1b\[/, 'no ANSI colour when stdout is not a TTY');
}

test('the built CLI exists (run npm run build first)', () => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run npm run build`);
});

test('a healthy setup passes every step end to end and exits 0', async () => {
  const h = await startHerald();
  const r = await doctor([h.url, '--user', '42', '--api-key', API_KEY], { HERALD_TOKEN_SECRET: SECRET });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const step of ['1 TCP', '2 HTTP', '3 Upgrade', '4 Connect', '5 Round trip']) assert.match(r.stdout, new RegExp(`ok +${step}`));
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
  const j = JSON.parse(r.stdout) as { ok: boolean; exitCode: number; steps: { step: string; status: string; code: string; details?: { latencyMs?: number } }[] };
  assert.equal(j.ok, true);
  assert.equal(j.exitCode, 0);
  assert.deepEqual(j.steps.map((s) => s.code), ['tcp_ok', 'herald_ok', 'upgrade_ok', 'connected', 'round_trip_ok']);
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
  const r = await doctor([`ws://127.0.0.1:${wrong}/ws`, '--json', '--timeout', '1s', '--scan-ports', String(await closedPort())]);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.stdout) as { failed: { step: string; code: string }; steps: { fix: string }[] };
  assert.deepEqual(j.failed, { step: 'tcp', code: 'nothing_listening' });
  assert.match(j.steps[0]!.fix, /herald serve/);
});

/** Stands in for `next dev`: 404 pages with Next's headers, and upgrades on unmatched paths left hanging. */
async function nextStandIn(): Promise<number> {
  const server = createHttpServer((req, res) => {
    res.writeHead(404, { 'x-powered-by': 'Next.js', 'content-type': 'text/html; charset=utf-8', vary: 'RSC, Next-Router-State-Tree, Next-Router-Prefetch' });
    res.end('<!DOCTYPE html><html><head><script src="/_next/static/chunks/webpack.js" async=""></script></head><body>404: This page could not be found.</body></html>');
  });
  const held: net.Socket[] = [];
  server.on('upgrade', (_req, socket: net.Socket) => held.push(socket));
  cleanups.push(() => held.forEach((s) => s.destroy()));
  return listen(server);
}

test('the Next.js dev server answering 404 on /ws: wrong server, with the rewrite and the direct-URL alternative', async () => {
  const h = await startHerald();
  const next = await nextStandIn();
  const r = await doctor([`ws://127.0.0.1:${next}/ws`, '--origin', `http://127.0.0.1:${next}`, '--timeout', '2s'], { WS_PORT: String(h.port) });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /ok +1 TCP/);
  assert.match(r.stdout, /FAIL 2 HTTP +GET http:\/\/127\.0\.0\.1:\d+\/ws answered 404 from Next\.js \(X-Powered-By: Next\.js\), not Herald/);
  assert.match(r.stdout, /async rewrites\(\)/);
  assert.match(r.stdout, new RegExp(`source: '/ws', destination: 'http://127\\.0\\.0\\.1:${h.port}/ws'`));
  assert.match(r.stdout, new RegExp(`NEXT_PUBLIC_HERALD_URL=ws://127\\.0\\.0\\.1:${h.port}/ws`));
  assert.match(r.stdout, new RegExp(`HERALD_ALLOWED_ORIGINS=http://127\\.0\\.0\\.1:${next}`));
  assert.match(r.stdout, /nextjs_no_rewrite/);
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
    HERALD_TOKEN_SECRET: SECRET, HERALD_ALLOWED_ORIGINS: 'http://app.example.test',
  });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /ok +2 HTTP/);
  assert.match(r.stdout, /FAIL 3 Upgrade +Herald refused the upgrade with 403: sent Origin http:\/\/evil\.example\.test/);
  assert.match(r.stdout, /HERALD_ALLOWED_ORIGINS=http:\/\/app\.example\.test,http:\/\/evil\.example\.test/);
  assert.match(r.stdout, /origin_not_allowed/);
});

test('an allowed Origin (taken from HERALD_ALLOWED_ORIGINS when --origin is absent) passes the upgrade', async () => {
  const h = await startHerald({ HERALD_ALLOWED_ORIGINS: 'http://app.example.test' });
  const r = await doctor([h.url, '--user', '42'], { HERALD_TOKEN_SECRET: SECRET, HERALD_ALLOWED_ORIGINS: 'http://app.example.test' });
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

test('a token from another secret: signed with a different secret than this server\'s', async () => {
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
  const m = await doctor([h.url, '--user', '42', '--api-key', API_KEY], { HERALD_TOKEN_SECRET: SECRET });
  assert.equal(m.code, 0, m.stdout + m.stderr);
  assert.match(m.stdout, /ok +5 Round trip +subscribed to \S+ in \d+ ms \(with a minted subscription token\); published through the HTTP API/);
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
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1']);
  assert.equal(made.status, 0, made.stderr.toString());
  const { readFileSync } = await import('node:fs');
  const server = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.end('hi'));
  const port = await listen(server);
  const r = await doctor([`ws://127.0.0.1:${port}/ws`, '--timeout', '2s']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /a TLS handshake there succeeds/);
  assert.match(r.stdout, new RegExp(`Use wss://127\\.0\\.0\\.1:${port}/ws`));
  assert.match(r.stdout, /plain_on_tls_port/);
  // And wss:// to it: the self-signed certificate is refused as a browser would refuse it.
  const w = await doctor([`wss://127.0.0.1:${port}/ws`, '--timeout', '2s']);
  assert.equal(w.code, 1, w.stdout + w.stderr);
  assert.match(w.stdout, /FAIL 2 HTTP +the TLS handshake with 127\.0\.0\.1:\d+ failed: (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_CERT_ALTNAME_INVALID)/);
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

// ---- Debian's nginx in front of Herald -------------------------------------------------------------------------

function startNginx(port: number, upstreamPort: number, passUpgrade: boolean, passHost = passUpgrade): Promise<{ proc: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'doctor-nginx-'));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d));
  const upgrade = passUpgrade
    ? 'proxy_http_version 1.1;\n      proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection "upgrade";'
    : '';
  const host = passHost ? 'proxy_set_header Host $http_host;' : '';
  writeFileSync(join(dir, 'nginx.conf'), `
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
    }
    location /api/ {
      proxy_pass http://127.0.0.1:${upstreamPort};
    }
  }
}
`);
  const proc = spawn(NGINX, ['-e', 'stderr', '-c', join(dir, 'nginx.conf'), '-p', dir, '-g', `daemon off; pid ${dir}/nginx.pid;`], { stdio: ['ignore', 'ignore', 'pipe'] });
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
  const r = await doctor([`ws://127.0.0.1:${port}/ws`, '--user', '42', '--api-key', API_KEY], { HERALD_TOKEN_SECRET: SECRET });
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
