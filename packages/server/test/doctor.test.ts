/**
 * The doctor's pure parts: HTTP and WebSocket framing, and each step's "what it saw -> what it means" function.
 * The real broken setups (nginx, a Next.js stand-in, hangs, tokens) are built in tests/doctor/doctor.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { interpretConnect, readToken, verifiesWith, type TokenFacts } from '../src/doctor/connect.js';
import { parseTarget, withPort } from '../src/doctor/finding.js';
import { allowedOriginsLine, nginxSnippet } from '../src/doctor/fixes.js';
import { decodeChunked, parseResponseHead, type ExchangeOutcome, type HttpResponse } from '../src/doctor/http-wire.js';
import { rewriteDestinationFor, sourceMatches } from '../src/doctor/next-manifest.js';
import { interpretPlainGet } from '../src/doctor/plain-get.js';
import { interpretRoundTrip } from '../src/doctor/round-trip.js';
import { nextjsEvidence } from '../src/doctor/servers.js';
import { candidatePorts, interpretTcp } from '../src/doctor/tcp.js';
import { interpretUpgrade } from '../src/doctor/upgrade.js';
import { encodeClientFrame, expectedAccept, FrameReader, Opcode, parseClose } from '../src/doctor/ws-frames.js';
import { renderFinding, renderJson } from '../src/doctor/render.js';

const target = parseTarget('ws://localhost:3000/ws');

function response(status: number, headers: Record<string, string>, body = ''): ExchangeOutcome {
  const r: HttpResponse = { httpVersion: '1.1', status, statusText: '', headers, body };
  return { kind: 'response', response: r, ms: 3 };
}

test('parseTarget accepts ws, wss, http, https and bare host:port, and keeps the path', () => {
  assert.equal(parseTarget('localhost:3002/ws').wsUrl, 'ws://localhost:3002/ws');
  const s = parseTarget('https://example.test/connection/websocket?x=1');
  assert.equal(s.secure, true);
  assert.equal(s.port, 443);
  assert.equal(s.path, '/connection/websocket?x=1');
  assert.equal(s.wsUrl, 'wss://example.test/connection/websocket?x=1');
  assert.equal(parseTarget('ws://[::1]:3002/ws').host, '::1');
  assert.equal(withPort(target, 3002), 'ws://localhost:3002/ws');
  assert.throws(() => parseTarget('ftp://x/ws'), /ws:\/\/, wss:\/\//);
});

test('an HTTP head is parsed with lower-cased, joined headers; chunked bodies are decoded', () => {
  const p = parseResponseHead(
    Buffer.from('HTTP/1.1 426 Upgrade Required\r\nX-Herald-Version: 0.1.0\r\nVary: a\r\nVary: b\r\n\r\n{"x":1}'),
  );
  assert.ok(p);
  assert.equal(p.head.status, 426);
  assert.equal(p.head.headers['x-herald-version'], '0.1.0');
  assert.equal(p.head.headers.vary, 'a, b');
  assert.equal(parseResponseHead(Buffer.from('Internal Server Error')), undefined);
  assert.deepEqual(decodeChunked(Buffer.from('5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n')), {
    body: Buffer.from('hello world'),
    complete: true,
  });
  assert.equal(decodeChunked(Buffer.from('5\r\nhel')).complete, false);
});

test('client frames are masked and the reader reassembles frames split across chunks', () => {
  const f = encodeClientFrame(Opcode.text, Buffer.from('{"id":1}'), Buffer.from([1, 2, 3, 4]));
  assert.equal(f[0], 0x81);
  assert.equal(f[1]! & 0x80, 0x80, 'mask bit set');
  const reader = new FrameReader();
  const long = Buffer.alloc(70_000, 0x61);
  const server = Buffer.concat([Buffer.from([0x81, 127]), Buffer.alloc(8), long]);
  server.writeBigUInt64BE(BigInt(long.length), 2);
  assert.deepEqual(reader.push(server.subarray(0, 100)), []);
  const frames = reader.push(server.subarray(100));
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.payload.length, 70_000);
  // The masked client frame decodes back to the text (the reader unmasks).
  assert.equal(new FrameReader().push(f)[0]!.payload.toString(), '{"id":1}');
  assert.deepEqual(parseClose(Buffer.concat([Buffer.from([0x0d, 0xac]), Buffer.from('invalid token')])), {
    code: 3500,
    reason: 'invalid token',
  });
  // RFC 6455 section 1.3's worked example.
  assert.equal(expectedAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});

test("the search for Herald starts at WS_PORT, then Herald's default and the neighbours, never the URL's port", () => {
  const ports = candidatePorts(3000, '4100');
  assert.equal(ports[0], 4100);
  assert.equal(ports[1], 3002);
  assert.ok(!ports.includes(3000));
  assert.ok(ports.includes(8000));
});

test('refused with a Herald nearby is wrong_port and names it; refused with none is nothing_listening', () => {
  const refused = {
    addresses: ['127.0.0.1'],
    attempts: [{ address: '127.0.0.1', ok: false, code: 'ECONNREFUSED', ms: 1 }],
  };
  const f = interpretTcp(target, { ...refused, heraldNearby: { url: 'ws://localhost:3002/ws', version: '0.1.0' } });
  assert.equal(f.code, 'wrong_port');
  assert.equal(f.means, 'Herald is at ws://localhost:3002/ws');
  assert.equal(interpretTcp(target, refused).code, 'nothing_listening');
  assert.equal(
    interpretTcp(target, { addresses: [], attempts: [], resolveError: { code: 'ENOTFOUND', message: '' } }).code,
    'host_not_found',
  );
  const v6 = interpretTcp(target, {
    addresses: ['::1', '127.0.0.1'],
    attempts: [
      { address: '::1', ok: false, code: 'ECONNREFUSED', ms: 1 },
      { address: '127.0.0.1', ok: true, ms: 1 },
    ],
  });
  assert.equal(v6.status, 'pass');
  assert.match(v6.means ?? '', /HERALD_HOST=::/);
});

test('a plain GET answered 426 with the marker is Herald; through Next.js it says so', () => {
  const f = interpretPlainGet(target, {
    outcome: response(426, { 'x-herald-version': '0.1.0', 'x-powered-by': 'Next.js' }),
    timeoutMs: 1000,
  });
  assert.equal(f.status, 'pass');
  assert.match(f.saw, /X-Herald-Version: 0\.1\.0 through Next\.js/);
});

test('Next.js is recognised by X-Powered-By, x-nextjs headers, Vary: RSC or a /_next/ page', () => {
  const r = (headers: Record<string, string>, body = ''): HttpResponse => ({
    httpVersion: '1.1',
    status: 404,
    statusText: '',
    headers,
    body,
  });
  assert.ok(nextjsEvidence(r({ 'x-powered-by': 'Next.js' })));
  assert.ok(nextjsEvidence(r({ 'x-nextjs-cache': 'HIT' })));
  assert.ok(nextjsEvidence(r({ vary: 'RSC, Next-Router-State-Tree' })));
  assert.ok(nextjsEvidence(r({}, '<script src="/_next/static/chunks/main.js"></script>')));
  assert.equal(nextjsEvidence(r({ server: 'nginx' }, '<h1>404</h1>')), undefined);
});

test('a 404 from Next.js is nextjs_no_rewrite with the rewrite pointing at the Herald found, and the direct URL', () => {
  const f = interpretPlainGet(target, {
    outcome: response(404, { 'x-powered-by': 'Next.js' }, '<html>404</html>'),
    timeoutMs: 1000,
    heraldNearby: { url: 'ws://localhost:3002/ws', version: '0.1.0' },
    pageOrigin: 'http://localhost:3000',
  });
  assert.equal(f.code, 'nextjs_no_rewrite');
  assert.match(f.fix ?? '', /source: '\/ws', destination: 'http:\/\/127\.0\.0\.1:3002\/ws'/);
  assert.match(f.fix ?? '', /NEXT_PUBLIC_HERALD_URL=ws:\/\/localhost:3002\/ws/);
  assert.match(f.fix ?? '', /HERALD_ALLOWED_ORIGINS=http:\/\/localhost:3000/);
  assert.equal(
    interpretPlainGet(target, { outcome: response(500, { 'x-powered-by': 'Next.js' }), timeoutMs: 1 }).code,
    'nextjs_upstream_down',
  );
});

test('the other plain-GET answers each get their own code', () => {
  const code = (outcome: ExchangeOutcome, extra: object = {}) =>
    interpretPlainGet(target, { outcome, timeoutMs: 1000, ...extra }).code;
  assert.equal(code({ kind: 'no_answer', ms: 1000 }), 'no_answer');
  assert.equal(
    code(response(404, { 'content-type': 'application/json' }, '{"error":{"code":404},"server":"herald"}')),
    'herald_wrong_path',
  );
  assert.equal(code(response(502, { server: 'nginx/1.22.1' }, 'Bad Gateway')), 'proxy_upstream_down');
  assert.equal(code(response(200, { server: 'Apache' }, 'It works')), 'wrong_server');
  assert.equal(code({ kind: 'closed', ms: 1 }, { tlsAnswered: true }), 'plain_on_tls_port');
  assert.equal(code({ kind: 'not_http', raw: 'Internal Server Error', ms: 1 }), 'proxy_upstream_down');
  assert.equal(code({ kind: 'not_http', raw: '-ERR unknown command', ms: 1 }), 'not_http');
  const wss = parseTarget('wss://localhost:3002/ws');
  assert.equal(
    interpretPlainGet(wss, {
      outcome: { kind: 'tls_error', code: 'ERR_SSL_WRONG_VERSION_NUMBER', message: 'wrong version number', ms: 1 },
      timeoutMs: 1,
    }).code,
    'tls_on_plain_port',
  );
  assert.equal(
    interpretPlainGet(wss, {
      outcome: { kind: 'tls_error', code: 'DEPTH_ZERO_SELF_SIGNED_CERT', message: 'self-signed', ms: 1 },
      timeoutMs: 1,
    }).code,
    'tls_certificate',
  );
});

test('an upgrade answered by Herald as a plain GET means a proxy stripped Upgrade; the nginx snippet has both headers', () => {
  const f = interpretUpgrade(target, {
    outcome: response(426, { 'x-herald-version': '0.1.0', server: 'nginx/1.22.1' }),
    key: 'k',
    origin: 'http://localhost:3000',
    timeoutMs: 1000,
  });
  assert.equal(f.code, 'proxy_strips_upgrade');
  assert.match(f.saw, /Server: nginx\/1\.22\.1/);
  for (const line of [
    'proxy_http_version 1.1;',
    'proxy_set_header Upgrade $http_upgrade;',
    'proxy_set_header Connection "upgrade";',
  ]) {
    assert.ok((f.fix ?? '').includes(line), line);
  }
});

test("upgrade answers: 101 with the right accept passes, Herald's 403 is the Origin, a proxy's 400 is a proxy, silence is a hang", () => {
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';
  const up = (outcome: ExchangeOutcome, origin = 'http://localhost:3000') =>
    interpretUpgrade(target, { outcome, key, origin, timeoutMs: 1000, allowedOriginsEnv: 'http://app.test' });
  assert.equal(up(response(101, { 'sec-websocket-accept': expectedAccept(key) })).status, 'pass');
  assert.equal(up(response(101, { 'sec-websocket-accept': 'nope' })).code, 'bad_accept');
  const o = up(
    response(
      403,
      { 'x-herald-version': '0.1.0', 'x-herald-error': 'origin_not_allowed' },
      '{"message":"Origin http://localhost:3000 is not allowed."}',
    ),
  );
  assert.equal(o.code, 'origin_not_allowed');
  assert.match(o.saw, /sent Origin http:\/\/localhost:3000/);
  assert.match(o.fix ?? '', /HERALD_ALLOWED_ORIGINS=http:\/\/app\.test,http:\/\/localhost:3000/);
  assert.equal(up(response(400, { server: 'nginx' }, 'Bad Request')).code, 'proxy_refuses_upgrade');
  assert.equal(
    up(response(429, { 'x-herald-version': '0.1.0', 'x-herald-error': 'connection_limit' })).code,
    'connection_limit',
  );
  assert.equal(
    up(response(503, { 'x-herald-version': '0.1.0', 'x-herald-error': 'rejected' })).code,
    'server_draining',
  );
  assert.equal(up({ kind: 'no_answer', ms: 1000 }).code, 'upgrade_hang');
  assert.equal(up({ kind: 'not_http', raw: 'Internal Server Error', ms: 1 }).code, 'proxy_upstream_down');
});

test('allowedOriginsLine appends to the current list without duplicates', () => {
  assert.equal(allowedOriginsLine('http://b', 'http://a, http://b'), 'HERALD_ALLOWED_ORIGINS=http://a,http://b');
  assert.equal(allowedOriginsLine('http://b', undefined), 'HERALD_ALLOWED_ORIGINS=http://b');
  assert.match(nginxSnippet('/ws', 'http://127.0.0.1:3002'), /location \/ws \{/);
});

const facts: TokenFacts = { source: 'token', claims: { sub: '42', exp: 1_000_000 } };
const close = (code: number, reason: string) =>
  interpretConnect({ token: facts, event: { type: 'close', code, reason }, timeoutMs: 1, ms: 1 });
const reply = (value: Record<string, unknown>) =>
  interpretConnect({ token: facts, event: { type: 'message', value, at: 0 }, timeoutMs: 1, ms: 1, now: 1_000_600_000 });

test('each token refusal Herald names gets its own code', () => {
  assert.equal(close(3500, 'invalid token: bad signature').code, 'token_bad_signature');
  assert.match(
    close(3500, 'invalid token: bad signature').means ?? '',
    /signed with a different secret than this server's/,
  );
  assert.equal(close(3500, 'invalid token: no exp claim (this server requires one)').code, 'token_missing_exp');
  assert.equal(close(3500, 'invalid token: wrong audience (aud)').code, 'token_bad_audience');
  assert.equal(close(3500, 'invalid token: wrong issuer (iss)').code, 'token_bad_issuer');
  assert.equal(close(3500, 'invalid token: not yet valid (nbf in the future)').code, 'token_not_yet_valid');
  assert.equal(close(3500, 'invalid token: malformed (not a signed JWT)').code, 'token_malformed');
  assert.equal(close(3500, 'invalid token: algorithm not allowed').code, 'token_alg_not_allowed');
  assert.equal(close(3500, 'invalid token: unknown key id (kid)').code, 'token_unknown_kid');
  assert.equal(close(3500, 'invalid token: this server has no token key configured').code, 'server_no_key');
  const expired = reply({ id: 1, error: { code: 109, message: 'token expired' } });
  assert.equal(expired.code, 'token_expired');
  assert.match(expired.saw, /exp is 1970-01-12T13:46:40\.000Z, 10 min ago/);
  assert.equal(reply({ id: 1, error: { code: 101, message: 'unauthorized' } }).code, 'token_required');
  assert.equal(reply({ id: 1, connect: { client: 'c', version: '0.1.0' } }).status, 'pass');
  assert.equal(
    interpretConnect({ token: facts, event: { type: 'timeout' }, timeoutMs: 1, ms: 1 }).code,
    'connect_timeout',
  );
});

test('the token is read without a key, and its signature checked against the local secret', async () => {
  const t = await new SignJWT({ aud: 'x' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('7')
    .sign(new TextEncoder().encode('one'));
  assert.equal(readToken(t).claims?.sub, '7');
  assert.equal(readToken(t).alg, 'HS256');
  assert.deepEqual(readToken('not a jwt'), {});
  assert.equal(await verifiesWith(t, 'one'), true);
  assert.equal(await verifiesWith(t, 'two'), false);
});

test('round trip: a refused subscribe is a warning, an undelivered publication a failure, a delivered one a pass', () => {
  const channel = 'herald-doctor-1';
  assert.equal(
    interpretRoundTrip({
      channel,
      subscribe: { ok: false, code: 103, message: 'permission denied', tokenTried: false },
    }).status,
    'warn',
  );
  assert.equal(
    interpretRoundTrip({
      channel,
      subscribe: { ok: true, via: 'client', ms: 1 },
      publish: { via: 'api', ok: false, notDelivered: true, waitedMs: 1000, offset: 1 },
    }).code,
    'publication_not_delivered',
  );
  const ok = interpretRoundTrip({
    channel,
    subscribe: { ok: true, via: 'client', ms: 1 },
    publish: { via: 'api', ok: true, deliveredMs: 4 },
  });
  assert.equal(ok.code, 'round_trip_ok');
  assert.equal(ok.details?.latencyMs, 4);
  assert.equal(
    interpretRoundTrip({
      channel,
      subscribe: { ok: true, via: 'client', ms: 1 },
      publish: { via: 'api', ok: false, status: 404, body: '<html>', apiUrl: 'http://x', herald: false },
    }).code,
    'api_not_herald',
  );
});

test('text output has no colour unless asked; JSON carries the exit code', () => {
  const f = interpretTcp(target, {
    addresses: ['127.0.0.1'],
    attempts: [{ address: '127.0.0.1', ok: false, code: 'ECONNREFUSED', ms: 1 }],
  });
  assert.doesNotMatch(renderFinding(f, false), /\x1b\[/);
  assert.match(renderFinding(f, true), /\x1b\[1;31mFAIL/);
  const j = JSON.parse(renderJson({ ok: false, url: target.wsUrl, origin: undefined, steps: [f], failed: f })) as {
    exitCode: number;
    failed: { code: string };
  };
  assert.equal(j.exitCode, 1);
  assert.equal(j.failed.code, 'nothing_listening');
});

test('every diagnosis code the doctor can emit is documented in docs/doctor.md', async () => {
  const { readFileSync, readdirSync } = await import('node:fs');
  const dir = new URL('../src/doctor/', import.meta.url);
  const codes = new Set<string>();
  for (const name of readdirSync(dir)) {
    const src = readFileSync(new URL(name, dir), 'utf8');
    for (const m of src.matchAll(/\bcode: (?:p\.herald \? )?'([a-z_]+)'(?: : '([a-z_]+)')?/g)) {
      codes.add(m[1]!);
      if (m[2]) codes.add(m[2]);
    }
  }
  assert.ok(codes.size > 40, `found only ${codes.size} codes`);
  const doc = readFileSync(new URL('../../../docs/doctor.md', import.meta.url), 'utf8');
  // One heading per code, so the link the CLI prints (docs/doctor.md#<code>) lands on it.
  const headings = new Set([...doc.matchAll(/^#### (.+)$/gm)].map((m) => m[1]!.trim()));
  const missing = [...codes].filter((c) => !headings.has(c));
  assert.deepEqual(missing, [], 'codes without their own #### heading in docs/doctor.md');
});

test("a URL without a path gets /ws in the rewrite, and Herald's 404 names the path that was asked", () => {
  const bare = parseTarget('http://localhost:3000');
  const f = interpretPlainGet(bare, {
    outcome: response(200, { 'x-powered-by': 'Next.js' }, '<html></html>'),
    timeoutMs: 1,
  });
  assert.match(f.means ?? '', /The URL has no path; Herald's endpoint is \/ws/);
  assert.match(f.fix ?? '', /source: '\/ws'/);
  const h = interpretPlainGet(bare, { outcome: response(404, {}, '{"server":"herald"}'), timeoutMs: 1 });
  assert.match(h.means ?? '', /^\/ is not one of Herald's WebSocket paths/);
});

test("Next.js's bare 500 for a rewrite whose destination is down is proxy_upstream_down, not another server", () => {
  const f = interpretPlainGet(target, {
    outcome: response(500, { 'transfer-encoding': 'chunked' }, 'Internal Server Error'),
    timeoutMs: 1,
  });
  assert.equal(f.code, 'proxy_upstream_down');
  assert.match(f.means ?? '', /Failed to proxy/);
  const other = interpretPlainGet(target, {
    outcome: response(500, { 'content-type': 'text/html' }, '<h1>Oops</h1>'),
    timeoutMs: 1,
  });
  assert.equal(other.code, 'wrong_server');
});

test('an API address the doctor only guessed is a warning when it is not Herald; a given one is a failure', () => {
  const sub = { ok: true as const, via: 'client' as const, ms: 1 };
  const notHerald = {
    via: 'api' as const,
    ok: false as const,
    status: 404,
    body: '<html>',
    apiUrl: 'http://localhost:3000',
    herald: false,
  };
  assert.equal(
    interpretRoundTrip({ channel: 'c', subscribe: sub, publish: { ...notHerald, guessed: true } }).status,
    'warn',
  );
  assert.equal(interpretRoundTrip({ channel: 'c', subscribe: sub, publish: notHerald }).status, 'fail');
  const wrongKey = {
    via: 'api' as const,
    ok: false as const,
    status: 401,
    body: '{"error":{}}',
    apiUrl: 'http://x',
    herald: true,
    guessed: true,
  };
  assert.equal(interpretRoundTrip({ channel: 'c', subscribe: sub, publish: wrongKey }).status, 'fail');
});

test("Herald answering behind Next.js is a pass that says so, with Herald's own address when found", () => {
  const f = interpretPlainGet(target, {
    outcome: response(426, { 'x-herald-version': '0.1.0', vary: 'Accept-Encoding' }, '{"server":"herald"}'),
    timeoutMs: 1,
    behind: {
      kind: 'nextjs',
      evidence: 'GET /_next/herald-doctor there answered with X-Powered-By: Next.js',
      herald: { url: 'ws://127.0.0.1:3002/ws', version: '0.1.0', from: 'found on a nearby port' },
    },
  });
  assert.equal(f.code, 'herald_ok');
  assert.match(
    f.saw,
    /X-Herald-Version: 0\.1\.0 through Next\.js \(\d+ ms\); GET \/_next\/herald-doctor there answered/,
  );
  assert.match(f.saw, /Herald itself: ws:\/\/127\.0\.0\.1:3002\/ws, found on a nearby port/);
});

test('the API address unknown behind Next.js is a warning naming --api-url', () => {
  const f = interpretRoundTrip({
    channel: 'c',
    subscribe: { ok: true, via: 'client', ms: 1 },
    publish: { via: 'api', ok: false, addressUnknown: { path: '/ws', scanned: [3002, 8000], manifestLooked: true } },
  });
  assert.equal(f.status, 'warn');
  assert.equal(f.code, 'api_address_unknown');
  assert.match(f.saw, /no rewrite of \/ws in \.next\/routes-manifest\.json here; no Herald on ports 3002, 8000/);
  assert.match(f.fix ?? '', /--api-url http:\/\/127\.0\.0\.1:3002/);
});

test("a rewrite's source pattern is matched segment by segment, never compiled from the manifest's regex", () => {
  assert.equal(sourceMatches('/ws', '/ws'), true);
  assert.equal(sourceMatches('/ws', '/ws/'), true);
  assert.equal(sourceMatches('/ws', '/wss'), false);
  assert.equal(sourceMatches('/ws', '/ws/x'), false);
  assert.equal(sourceMatches('/ws/:path*', '/ws'), true);
  assert.equal(sourceMatches('/ws/:path*', '/ws/a/b'), true);
  assert.equal(sourceMatches('/ws/:path+', '/ws'), false);
  assert.equal(sourceMatches('/ws/:path+', '/ws/a'), true);
  assert.equal(sourceMatches('/:ns/ws', '/chat/ws'), true);
  assert.equal(sourceMatches('/:ns/ws', '/ws'), false);
  assert.equal(sourceMatches('/ws/:id?', '/ws'), true);
  assert.equal(sourceMatches('/ws/:id?', '/ws/1'), true);
  assert.equal(sourceMatches('/connection/websocket', '/connection/websocket?cf=1'), true);
});

test("a Next.js app's routes manifest gives the destination of the rewrite matching the path (next build and next dev layouts)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'doctor-manifest-'));
  try {
    assert.equal(rewriteDestinationFor(dir, '/ws'), undefined, 'no manifest');
    mkdirSync(join(dir, '.next/dev'), { recursive: true });
    // next dev (16): .next/dev/; the phases form of `rewrites`.
    writeFileSync(
      join(dir, '.next/dev/routes-manifest.json'),
      JSON.stringify({
        rewrites: {
          beforeFiles: [{ source: '/app/:p*', destination: '/other/:p*', regex: '^/app(?:/(.*))?(?:/)?$' }],
          afterFiles: [{ source: '/ws', destination: 'http://127.0.0.1:4111/ws', regex: '^/ws(?:/)?$' }],
          fallback: [],
        },
      }),
    );
    assert.deepEqual(rewriteDestinationFor(dir, '/ws'), {
      source: '/ws',
      destination: 'http://127.0.0.1:4111/ws',
      manifest: '.next/dev/routes-manifest.json',
    });
    assert.equal(rewriteDestinationFor(dir, '/socket'), undefined, 'no rewrite for this path');
    assert.equal(rewriteDestinationFor(dir, '/app/x'), undefined, 'a destination inside the app is not an address');
    // next build: .next/, read first; the older array form of `rewrites`.
    writeFileSync(
      join(dir, '.next/routes-manifest.json'),
      JSON.stringify({ rewrites: [{ source: '/ws', destination: 'http://10.0.0.5:3002/ws', regex: '^/ws(?:/)?$' }] }),
    );
    assert.equal(rewriteDestinationFor(dir, '/ws')?.destination, 'http://10.0.0.5:3002/ws');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every code the doctor can report is asserted by a test and has its entry in docs/doctor.md', () => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const srcDir = join(root, 'packages/server/src/doctor');
  const codes = new Set<string>();
  for (const f of readdirSync(srcDir)) {
    for (const m of readFileSync(join(srcDir, f), 'utf8').matchAll(/\bcode: ([^,}\n]+)/g)) {
      for (const q of m[1]!.matchAll(/'([a-z_]+)'/g)) codes.add(q[1]!);
    }
  }
  assert.ok(codes.size >= 50, `found the doctor's codes (${codes.size})`);
  // The real setups (tests/doctor) and the interpret functions fed what a setup would show (this file).
  const testFiles = [
    ...readdirSync(join(root, 'tests/doctor'))
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => join(root, 'tests/doctor', f)),
    fileURLToPath(import.meta.url),
  ];
  const tests = testFiles.map((f) => readFileSync(f, 'utf8')).join('\n');
  const untested = [...codes].filter((c) => !tests.includes(`'${c}'`) && !tests.includes(`/${c}/`));
  assert.deepEqual(untested, [], 'codes no test asserts');
  const headings = new Set(
    [...readFileSync(join(root, 'docs/doctor.md'), 'utf8').matchAll(/^#### ([a-z_]+)$/gm)].map((m) => m[1]!),
  );
  assert.deepEqual(
    [...codes].filter((c) => !headings.has(c)),
    [],
    'codes without a docs/doctor.md entry',
  );
  assert.deepEqual(
    [...headings].filter((h) => !codes.has(h)),
    [],
    'docs/doctor.md entries the doctor never reports',
  );
});
