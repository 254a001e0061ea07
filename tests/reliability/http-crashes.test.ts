// Requests that used to take the whole process down (issue #20), one test per item. Herald runs as `herald serve` in a
// child process, so a crash shows as the child exiting; after each attack the test checks that the same process
// still answers /health and that a normal WebSocket client still receives a publication.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import {
  API_KEY,
  mintToken,
  startHerald,
  stopAll,
  waitFor,
  within,
  type HeraldProcess,
} from './support/herald-process.js';
import { rawUpgrade } from './support/raw-ws.js';

after(stopAll);

interface RawAnswer {
  /** The status of the first response, 0 when the connection ended without one. */
  status: number;
  /** Everything received, as latin1 text. */
  text: string;
  /** The connection was reset (ECONNRESET) rather than closed in order. */
  reset: boolean;
}

/** Writes `request` on a fresh TCP connection and collects the answer until the server closes it. */
function rawHttp(port: number, request: string | Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let reset = false;
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') reset = true;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, reset });
    });
    socket.once('connect', () => socket.write(request));
  });
}

function post(path: string, body: string, headers: Record<string, string> = {}): string {
  const extra = Object.entries({ 'content-type': 'application/json', ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

function alive(h: HeraldProcess): boolean {
  return h.child.exitCode === null && h.child.signalCode === null;
}

/** Alive, asked after a round trip to the process (a crash that just closed our socket may not be reaped yet). */
async function stillAlive(h: HeraldProcess): Promise<boolean> {
  await h.status('/health', 2000);
  await new Promise((r) => setTimeout(r, 100));
  return alive(h);
}

/** The process is up, /health answers 200 and a fresh WebSocket client gets a publication. */
async function assertServes(h: HeraldProcess, what: string): Promise<void> {
  assert.ok(alive(h), `Herald is still running after ${what} (stderr: ${h.stderr().slice(-1500)})`);
  assert.equal(await h.status('/health'), 200, `/health answers after ${what}`);
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}/connection/websocket`);
  try {
    const lines: any[] = [];
    ws.on('message', (d) => {
      for (const l of d.toString().split('\n')) if (l) lines.push(JSON.parse(l));
    });
    ws.on('error', () => {});
    await within(new Promise((r, j) => ws.once('open', r).once('error', j)), 5000, 'a WebSocket client opens');
    ws.send(
      JSON.stringify({ id: 1, connect: { token: await mintToken('after') } }) +
        '\n' +
        JSON.stringify({ id: 2, subscribe: { channel: 'after' } }),
    );
    await waitFor(() => lines.some((m) => m.id === 2), `a client subscribed after ${what}`);
    const marker = Math.random();
    assert.equal((await h.api('publish', { channel: 'after', data: { marker } })).status, 200);
    await waitFor(
      () => lines.some((m) => m.push?.pub?.data?.marker === marker),
      `a client got a publication after ${what}`,
    );
  } finally {
    ws.terminate();
  }
}

async function metric(h: HeraldProcess, key: string): Promise<number> {
  return (await h.metrics()).get(key) ?? 0;
}

/** An HTTP-streaming client over raw TCP; `pause()` stops reading (the kernel buffers fill, then Herald's). */
function rawStream(port: number, request: string) {
  const socket = net.connect({ port, host: '127.0.0.1' });
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.once('connect', () => socket.write(request));
  return { socket, closed, text: () => text };
}

test(
  '1. request targets that URL parsing rejects (//a:99999/, http://[/) are answered, not fatal: 404 for the odd path, 400 for the broken absolute URL, on the default config and with the emulation endpoints on',
  { timeout: 60_000 },
  async () => {
    for (const env of [{}, { HERALD_HTTP_STREAM: 'true', HERALD_SSE: 'true' }]) {
      const h = await startHerald({ env });
      const odd = await rawHttp(h.port, 'GET //a:99999/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      assert.equal(
        odd.status,
        404,
        `GET //a:99999/ is answered 404 (${JSON.stringify(env)}): ${odd.text.slice(0, 200)}`,
      );
      const broken = await rawHttp(h.port, 'GET http://[/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      assert.equal(
        broken.status,
        400,
        `GET http://[/ is answered 400 (${JSON.stringify(env)}): ${broken.text.slice(0, 200)}`,
      );
      const upgrade = await rawHttp(
        h.port,
        'GET http://[/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      assert.equal(
        upgrade.status,
        404,
        `an upgrade to http://[/ is answered 404 (not a WebSocket path): ${upgrade.text.slice(0, 200)}`,
      );
      await assertServes(h, 'targets new URL() rejects');
      await h.kill();
    }
  },
);

test(
  '2. POST /emulation with the body null (or any JSON that is not an object) is answered 400 and Herald keeps serving',
  { timeout: 30_000 },
  async () => {
    const h = await startHerald({ env: { HERALD_HTTP_STREAM: 'true', HERALD_SSE: 'true' } });
    for (const body of ['null', '1', '"session"', '[]', 'true']) {
      const r = await rawHttp(h.port, post('/emulation', body));
      assert.equal(r.status, 400, `body ${body} is answered 400: ${r.text.slice(0, 200)}`);
      assert.match(r.text, /expected JSON \{"session","node","data"\}/);
    }
    await assertServes(h, 'POST /emulation null');
  },
);

test(
  '3. an HTTP-streaming and an SSE client that stop reading while publications of 500 KB go to their channel (12 did it in the issue) are closed alone with 3008; Herald keeps serving',
  { timeout: 60_000 },
  async (t) => {
    const h = await startHerald({ env: { HERALD_HTTP_STREAM: 'true', HERALD_SSE: 'true' } });
    const connect = (id: string) => JSON.stringify({ id: 1, connect: { token: '' } }).replace('""', JSON.stringify(id));
    const streamBody = `${connect(await mintToken('slow-stream'))}\n${JSON.stringify({ id: 2, subscribe: { channel: 'big' } })}`;
    const stream = rawStream(
      h.port,
      post('/connection/http_stream', streamBody, { 'content-type': 'application/json' }).replace(
        'Connection: close\r\n',
        '',
      ),
    );
    const sseParam = encodeURIComponent(
      `${connect(await mintToken('slow-sse'))}\n${JSON.stringify({ id: 2, subscribe: { channel: 'big' } })}`,
    );
    const sse = rawStream(h.port, `GET /connection/sse?cf_connect=${sseParam} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await waitFor(() => stream.text().includes('"id":2') && sse.text().includes('"id":2'), 'both streams subscribed');
    stream.socket.pause();
    sse.socket.pause();
    const payload = 'x'.repeat(500 * 1024);
    // Until the kernel's socket buffers and then the 1 MiB send buffer are full: 12 here; at most 40 (20 MB).
    let sent = 0;
    while (sent < 40 && alive(h) && (await metric(h, 'herald_disconnects_total{code="3008"}').catch(() => 0)) < 2) {
      await h.api('publish', { channel: 'big', data: { i: sent, payload } }).catch(() => undefined);
      sent++;
    }
    assert.ok(await stillAlive(h), `Herald survived the slow stream readers (stderr: ${h.stderr().slice(-1500)})`);
    t.diagnostic(`${sent} publications of 500 KB until both streams were closed`);
    await waitFor(
      async () => (await metric(h, 'herald_disconnects_total{code="3008"}')) === 2,
      'both stalled streams closed with 3008 (slow)',
    );
    assert.equal(await metric(h, 'herald_connections'), 0, 'no session is left');
    // Herald also ended their sockets: once the clients read again they reach the end.
    stream.socket.resume();
    sse.socket.resume();
    await within(
      Promise.all([stream.closed, sse.closed]),
      10_000,
      'the stalled clients reach the end of their streams',
    );
    await assertServes(h, 'two stalled streams');
  },
);

test(
  '4. one small WebSocket frame of heavy commands (150 x history of 420 KB, or 100 x recovering subscribe of 420 KB + unsubscribe) from a client that does not read: its replies go out as they are made, it is closed with 3008 once they pass the send buffer, the rest of its backlog is dropped, memory stays bounded and Herald keeps serving',
  { timeout: 90_000 },
  async (t) => {
    const h = await startHerald({
      withoutNamespace: {
        history_size: 100,
        history_ttl: '300s',
        allow_history_for_client: true,
        allow_recovery: true,
      },
    });
    // Each reply (7 publications of 60 KB) fits in the 1 MiB send buffer and in a reply's size limit on its own; the
    // replies of one frame together are 64 MB (before the fix they were all queued, then joined into one string).
    const payload = 'y'.repeat(60 * 1024);
    for (let i = 0; i < 100; i++)
      assert.equal((await h.api('publish', { channel: 'heavy', data: { i, payload } })).status, 200);
    const rssBefore = h.rss();
    const variants: { method: string; count: number; commands: unknown[] }[] = [
      {
        method: 'history',
        count: 150,
        commands: Array.from({ length: 150 }, (_, k) => ({ id: k + 2, history: { channel: 'heavy', limit: 7 } })),
      },
      {
        method: 'subscribe',
        count: 100,
        commands: Array.from({ length: 100 }, (_, k) => [
          { id: 2 * k + 2, subscribe: { channel: 'heavy', recover: true, offset: 93 } },
          { id: 2 * k + 3, unsubscribe: { channel: 'heavy' } },
        ]).flat(),
      },
    ];
    for (const [i, v] of variants.entries()) {
      const raw = await rawUpgrade(h.port, { read: false });
      assert.equal(raw.status, 101);
      const frame = [{ id: 1, connect: { token: await mintToken(`heavy-${v.method}`) } }, ...v.commands]
        .map((c) => JSON.stringify(c))
        .join('\n');
      assert.ok(Buffer.byteLength(frame) < 12 * 1024, `the frame is small (${Buffer.byteLength(frame)} bytes)`);
      const before = await metric(h, `herald_messages_in_total{method="${v.method}"}`);
      raw.send({ id: 1, connect: { token: await mintToken(`heavy-${v.method}`) } }, ...v.commands);
      await waitFor(
        async () => (await metric(h, 'herald_disconnects_total{code="3008"}')) === i + 1,
        `the ${v.method} client closed with 3008 (slow)`,
        20_000,
      );
      assert.ok(await stillAlive(h), `Herald survived the ${v.method} frame (stderr: ${h.stderr().slice(-1500)})`);
      raw.socket.resume();
      await within(raw.closed, 5000, `Herald ended the ${v.method} client's socket (seen once the client reads again)`);
      // What the loopback socket buffers absorb (a few MB) passes before the 3008; the rest of the frame never runs.
      const processed = (await metric(h, `herald_messages_in_total{method="${v.method}"}`)) - before;
      assert.ok(
        processed < v.count / 2,
        `the session stopped at the close: ${processed} of ${v.count} ${v.method} commands ran`,
      );
      t.diagnostic(`${v.method}: ${processed} of ${v.count} commands ran before the 3008`);
      raw.socket.destroy();
    }
    const growth = h.rss() - rssBefore;
    assert.ok(growth < 100 * 1024 * 1024, `Herald's RSS grew ${Math.round(growth / 1048576)} MiB (bound 100 MiB)`);
    t.diagnostic(`Herald's RSS grew ${Math.round(growth / 1048576)} MiB`);
    await assertServes(h, 'frames of heavy commands');
  },
);

test(
  '7. HTTP-streaming requests pipelined on one TCP socket (300 of them) are refused by closing that connection: no session is left behind and the address keeps all its connection slots',
  { timeout: 60_000 },
  async () => {
    const h = await startHerald({ env: { HERALD_HTTP_STREAM: 'true', HERALD_IP_CONNECTION_LIMIT: '3' } });
    const token = await mintToken('pipeliner');
    const one = post('/connection/http_stream', JSON.stringify({ id: 1, connect: { token } })).replace(
      'Connection: close\r\n',
      '',
    );
    const pipe = rawStream(h.port, one.repeat(300));
    await within(pipe.closed, 5000, 'Herald closes the connection that pipelines stream requests');
    await waitFor(
      async () => (await metric(h, 'herald_connections')) === 0,
      'no session left from the pipelined socket',
      3000,
    );
    // All three slots of the address are free: three streams open side by side.
    const fresh = [0, 1, 2].map(() => rawStream(h.port, one));
    try {
      await waitFor(() => fresh.every((f) => /^HTTP\/1\.1 \d{3}/.test(f.text())), 'three fresh streams answered', 5000);
      assert.deepEqual(
        fresh.map((f) => Number(f.text().slice(9, 12))),
        [200, 200, 200],
        'the address has all its slots back',
      );
    } finally {
      for (const f of fresh) f.socket.destroy();
    }
    await assertServes(h, 'pipelined streams');
  },
);

test(
  '9. the HTTP front door: an insecure /api refuses text/plain (415) and foreign Origins (403); /emulation honours X-Forwarded-Host like the WebSocket check; an oversized /emulation body gets 413, not a reset',
  { timeout: 60_000 },
  async () => {
    const insecure = await startHerald({ env: { HERALD_API_INSECURE: 'true', HERALD_HTTP_STREAM: 'true' } });
    const publish = JSON.stringify({ channel: 'csrf', data: { x: 1 } });
    const plainText = await rawHttp(insecure.port, post('/api/publish', publish, { 'content-type': 'text/plain' }));
    assert.equal(plainText.status, 415, `text/plain is refused: ${plainText.text.slice(0, 300)}`);
    const foreign = await rawHttp(insecure.port, post('/api/publish', publish, { origin: 'https://evil.example' }));
    assert.equal(foreign.status, 403, `a foreign Origin is refused: ${foreign.text.slice(0, 300)}`);
    const server = await rawHttp(insecure.port, post('/api/publish', publish));
    assert.equal(server.status, 200, `a server-side JSON call still works: ${server.text.slice(0, 300)}`);
    const sameSite = await rawHttp(
      insecure.port,
      post('/api/publish', publish, { origin: 'https://app.example', 'x-forwarded-host': 'app.example' }),
    );
    assert.equal(sameSite.status, 200, `the proxy's own origin is accepted: ${sameSite.text.slice(0, 300)}`);

    // Behind a proxy: Host is Herald's, X-Forwarded-Host the public one; the WebSocket check accepts this origin.
    const proxied = rawStream(
      insecure.port,
      post('/connection/http_stream', JSON.stringify({ id: 1, connect: { token: await mintToken('proxied') } }), {
        origin: 'https://app.example',
        'x-forwarded-host': 'app.example',
      }).replace('Connection: close\r\n', ''),
    );
    await waitFor(() => /^HTTP\/1\.1 \d{3}/.test(proxied.text()), 'the proxied stream answered');
    assert.equal(
      Number(proxied.text().slice(9, 12)),
      200,
      `the stream from the proxy's origin is accepted: ${proxied.text().slice(0, 300)}`,
    );
    proxied.socket.destroy();

    const big = JSON.stringify({ session: 'x', node: 'y', data: 'z'.repeat(200 * 1024) });
    const tooBig = await rawHttp(insecure.port, post('/emulation', big));
    assert.equal(tooBig.status, 413, `an oversized /emulation body is answered 413: ${tooBig.text.slice(0, 300)}`);
    assert.equal(tooBig.reset, false, 'the connection is closed in order, not reset');
    const bigStream = await rawHttp(insecure.port, post('/connection/http_stream', big));
    assert.equal(bigStream.status, 413, `an oversized stream connect is answered 413: ${bigStream.text.slice(0, 300)}`);
    assert.equal(bigStream.reset, false, 'the stream connection is closed in order, not reset');
    await assertServes(insecure, 'the front-door checks');
  },
);

test(
  '#21-7. /ready without the API key says only ready or not and which checks failed; with the key it gives the details',
  { timeout: 30_000 },
  async () => {
    // An outbox database that is never reachable: a loopback port where nothing listens; its error names host and port.
    const h = await startHerald({
      env: { HERALD_DATABASE_URL: 'postgres://herald@127.0.0.1:1/test', HERALD_OUTBOX_POLL_MS: '200' },
      waitFor: 'health',
    });
    const detailed = await waitFor(async () => {
      const r = await fetch(`http://127.0.0.1:${h.port}/ready`, { headers: { 'x-api-key': API_KEY } });
      const body = (await r.json()) as { status: string; checks: Record<string, string> };
      // The check first says the consumer is starting; wait for its verdict on the database.
      return r.status === 503 && /not reachable/.test(body.checks.outbox ?? '') ? body : undefined;
    }, 'the outbox check to say the database is not reachable');
    assert.equal(detailed.status, 'not ready');
    assert.match(
      detailed.checks.outbox ?? '',
      /127\.0\.0\.1:1\b/,
      `with the key the outbox check names where the database is: ${JSON.stringify(detailed)}`,
    );
    assert.equal(detailed.checks.engine, 'ok');
    const plain = await fetch(`http://127.0.0.1:${h.port}/ready`);
    const plainText = await plain.text();
    assert.equal(plain.status, 503);
    assert.deepEqual(JSON.parse(plainText), { status: 'not ready', failed: ['outbox'] });
    const wrongKey = await fetch(`http://127.0.0.1:${h.port}/ready`, { headers: { 'x-api-key': 'not-the-key' } });
    assert.deepEqual(
      await wrongKey.json(),
      { status: 'not ready', failed: ['outbox'] },
      'a wrong key gets the plain answer',
    );
  },
);
