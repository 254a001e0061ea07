// Unidirectional transports (uni_http_stream, uni_sse, uni_websocket) as Centrifugo v6 defines them: one connect
// request, then bare pushes only. Read with Node's fetch, a spawned `curl -N` and a real `ws` client over loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import WebSocket from 'ws';
import { api, mintToken, startHerald, waitFor, type TestServer } from './support/herald.js';

const UNI_ENV = { HERALD_UNI_SSE: 'true', HERALD_UNI_HTTP_STREAM: 'true', HERALD_UNI_WEBSOCKET: 'true' };
const CHANNELS = {
  channel: {
    without_namespace: {
      history_size: 100,
      history_ttl: '300s',
      force_recovery: true,
      join_leave: true,
      force_push_join_leave: true,
    },
  },
};

/** A unidirectional stream read with fetch: every message parsed, in order; `ended` once the server closed it. */
class UniReader {
  readonly messages: any[] = [];
  status = 0;
  ended = false;
  private readonly abort = new AbortController();
  private constructor() {}

  static async open(url: string, init: RequestInit, sse: boolean): Promise<UniReader> {
    const r = new UniReader();
    const res = await fetch(url, { ...init, signal: r.abort.signal });
    r.status = res.status;
    if (res.status !== 200 || !res.body) {
      await res.text();
      r.ended = true;
      return r;
    }
    void r.read(res.body, sse);
    return r;
  }

  private async read(body: ReadableStream<Uint8Array>, sse: boolean): Promise<void> {
    const decoder = new TextDecoder();
    let buf = '';
    const sep = sse ? '\n\n' : '\n';
    try {
      for await (const chunk of body) {
        buf += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf(sep)) >= 0) {
          const event = buf.slice(0, end);
          buf = buf.slice(end + sep.length);
          const text = sse
            ? event
                .split('\n')
                .filter((l) => l.startsWith('data: '))
                .map((l) => l.slice(6))
                .join('\n')
            : event;
          if (text.trim() !== '') this.messages.push(JSON.parse(text));
        }
      }
    } catch {
      /* aborted */
    }
    this.ended = true;
  }

  async next(pred: (m: any) => boolean, what: string): Promise<any> {
    return waitFor(() => this.messages.find(pred), what);
  }

  close(): void {
    this.abort.abort();
  }
}

function uniHttpStream(s: TestServer, request: unknown, headers: Record<string, string> = {}): Promise<UniReader> {
  return UniReader.open(
    `${s.httpUrl}/connection/uni_http_stream`,
    { method: 'POST', body: JSON.stringify(request), headers: { 'content-type': 'application/json', ...headers } },
    false,
  );
}

function uniSse(s: TestServer, request: unknown, headers: Record<string, string> = {}): Promise<UniReader> {
  const url = new URL(`${s.httpUrl}/connection/uni_sse`);
  url.searchParams.set('cf_connect', JSON.stringify(request));
  return UniReader.open(url.toString(), { headers: { accept: 'text/event-stream', ...headers } }, true);
}

/** A uni_websocket client: sends the connect request as its first message; each frame's messages, in order. */
async function uniWs(s: TestServer, request: unknown) {
  const ws = new WebSocket(`ws://127.0.0.1:${s.port}/connection/uni_websocket`);
  const frames: string[] = [];
  const messages: any[] = [];
  let close: { code: number; reason: string } | undefined;
  ws.on('message', (data) => {
    frames.push(data.toString());
    for (const line of data.toString().split('\n')) if (line.trim()) messages.push(JSON.parse(line));
  });
  ws.on('close', (code, reason) => (close = { code, reason: reason.toString() }));
  ws.on('error', () => {});
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  ws.send(JSON.stringify(request));
  return {
    ws,
    frames,
    messages,
    next: (pred: (m: any) => boolean, what: string) => waitFor(() => messages.find(pred), what),
    closed: () => waitFor(() => close, 'uni websocket close'),
  };
}

const publish = (s: TestServer, channel: string, data: unknown) => api(s, 'publish', { channel, data });

describe('unidirectional transports', () => {
  let s: TestServer;
  before(async () => {
    s = await startHerald({
      env: UNI_ENV,
      fileConfig: CHANNELS,
      hooks: {
        // A connection named "hooked" gets its channels from the hook instead of a token.
        onConnecting: ({ name }) => (name === 'hooked' ? { user: 'hooked', channels: ['from-hook'] } : undefined),
      },
    });
  });
  after(() => s.close());

  test('uni_http_stream: the connect push comes first with the token channels, then publications as bare pushes', async () => {
    const token = await mintToken({ sub: 'alice', channels: ['news'] });
    const r = await uniHttpStream(s, { token });
    try {
      assert.equal(r.status, 200);
      const connect = await r.next((m) => m.connect, 'connect push');
      assert.equal(r.messages[0], connect, 'the connect push is the first message');
      assert.equal(typeof connect.connect.client, 'string');
      assert.equal(connect.connect.pong, undefined, 'a unidirectional client is not asked for pongs');
      assert.ok(connect.connect.subs.news, 'subscribed to the token channel');
      assert.equal(connect.connect.subs.news.recoverable, true);
      assert.equal((await publish(s, 'news', { n: 1 })).status, 200);
      const pub = await r.next((m) => m.pub, 'publication');
      assert.equal(pub.channel, 'news');
      assert.deepEqual(pub.pub.data, { n: 1 });
      assert.equal(pub.push, undefined, 'bare push, no bidirectional envelope');
    } finally {
      r.close();
    }
  });

  test('uni_sse: subscribe and unsubscribe from the server API arrive as pushes, a server disconnect as the last message', async () => {
    const token = await mintToken({ sub: 'bob' });
    const r = await uniSse(s, { token });
    try {
      await r.next((m) => m.connect, 'connect push');
      assert.equal((await api(s, 'subscribe', { user: 'bob', channel: 'later' })).status, 200);
      const sub = await r.next((m) => m.subscribe, 'subscribe push');
      assert.equal(sub.channel, 'later');
      await publish(s, 'later', 'hello');
      assert.equal((await r.next((m) => m.pub, 'publication')).pub.data, 'hello');
      await api(s, 'unsubscribe', { user: 'bob', channel: 'later' });
      const unsub = await r.next((m) => m.unsubscribe, 'unsubscribe push');
      assert.equal(unsub.channel, 'later');
      await api(s, 'disconnect', { user: 'bob' });
      await waitFor(() => r.ended, 'the stream to end');
      assert.ok(r.messages.at(-1).disconnect, 'the disconnect push is the last message');
    } finally {
      r.close();
    }
  });

  test('uni_sse: channels returned by the onConnecting hook are subscribed', async () => {
    const r = await uniSse(s, { name: 'hooked' });
    try {
      const connect = await r.next((m) => m.connect, 'connect push');
      assert.ok(connect.connect.subs['from-hook']);
    } finally {
      r.close();
    }
  });

  test('uni_http_stream: a reconnect with the last offset and epoch in subs recovers exactly what was missed', async () => {
    const token = await mintToken({ sub: 'carol', channels: ['ticker'] });
    await publish(s, 'ticker', { n: 0 });
    const first = await uniHttpStream(s, { token });
    const c1 = (await first.next((m) => m.connect, 'connect push')).connect.subs.ticker;
    first.close();
    await waitFor(() => s.herald.connectionCount === 0, 'the first connection gone');
    await publish(s, 'ticker', { n: 1 });
    await publish(s, 'ticker', { n: 2 });
    const second = await uniHttpStream(s, {
      token,
      subs: { ticker: { recover: true, offset: c1.offset, epoch: c1.epoch } },
    });
    try {
      const c2 = (await second.next((m) => m.connect, 'connect push')).connect.subs.ticker;
      assert.equal(c2.recovered, true);
      assert.equal(c2.was_recovering, true);
      assert.deepEqual(
        c2.publications.map((p: any) => p.data),
        [{ n: 1 }, { n: 2 }],
      );
      assert.equal(c2.offset, c1.offset + 2);
    } finally {
      second.close();
    }
  });

  test('uni_websocket: connect request as the first message, one push per frame, join and leave pushes', async () => {
    const token = await mintToken({ sub: 'dave', channels: ['room'] });
    const c = await uniWs(s, { token });
    try {
      const connect = await c.next((m) => m.connect, 'connect push');
      assert.ok(connect.connect.subs.room);
      const other = await uniHttpStream(s, { token: await mintToken({ sub: 'erin', channels: ['room'] }) });
      await other.next((m) => m.connect, 'second connect');
      const join = await c.next((m) => m.join, 'join push');
      assert.equal(join.join.info.user, 'erin');
      await publish(s, 'room', 1);
      await publish(s, 'room', 2);
      await waitFor(() => c.messages.filter((m) => m.pub).length === 2, 'two publications');
      other.close();
      await c.next((m) => m.leave, 'leave push');
      for (const f of c.frames) assert.ok(!f.includes('\n'), `one message per frame: ${f}`);
      // Later messages from the client are ignored.
      c.ws.send(JSON.stringify({ id: 2, subscribe: { channel: 'x' } }));
      await publish(s, 'room', 3);
      await waitFor(() => c.messages.filter((m) => m.pub).length === 3, 'the third publication');
    } finally {
      c.ws.terminate();
    }
  });

  test('uni_websocket: a refused token ends with a disconnect push and the same close code', async () => {
    const c = await uniWs(s, { token: await mintToken({ sub: 'x' }, { secret: 'another-secret' }) });
    const closed = await c.closed();
    assert.equal(closed.code, 3500);
    assert.equal(c.messages.at(-1).disconnect.code, 3500);
  });

  test('a connect error (no token) is a terminal disconnect push on a stream', async () => {
    const r = await uniHttpStream(s, {});
    await waitFor(() => r.ended, 'the stream to end');
    assert.equal(r.messages.length, 1);
    assert.equal(r.messages[0].disconnect.code, 3500);
    assert.match(r.messages[0].disconnect.reason, /token/);
  });

  test('a connect request that is not a JSON object is answered 400', async () => {
    const res = await fetch(`${s.httpUrl}/connection/uni_sse?cf_connect=%5B1%5D`);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /JSON object/);
    const bad = await fetch(`${s.httpUrl}/connection/uni_http_stream`, { method: 'POST', body: '{nope' });
    assert.equal(bad.status, 400);
  });

  test('curl -N tails a channel over uni_sse', async () => {
    const token = await mintToken({ sub: 'curl', channels: ['tail'] });
    const url = `${s.httpUrl}/connection/uni_sse?cf_connect=${encodeURIComponent(JSON.stringify({ token }))}`;
    const curl = spawn('curl', ['-sN', '--max-time', '15', url]);
    let out = '';
    curl.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('"connect"'), 'curl to print the connect push');
      await publish(s, 'tail', { hello: 'curl' });
      await waitFor(() => out.includes('"hello":"curl"'), 'curl to print the publication');
      const events = out.split('\n\n').filter((e) => e.startsWith('data: '));
      assert.deepEqual(JSON.parse(events[1]!.slice(6)), {
        channel: 'tail',
        pub: { data: { hello: 'curl' }, offset: 1 },
      });
    } finally {
      curl.kill();
    }
  });
});

describe('unidirectional transports: limits', () => {
  test('an Origin outside HERALD_ALLOWED_ORIGINS is refused with 403 on every unidirectional endpoint', async () => {
    const s = await startHerald({ env: { ...UNI_ENV, HERALD_ALLOWED_ORIGINS: 'https://app.example' } });
    try {
      const token = await mintToken({ sub: 'o' });
      const sse = await uniSse(s, { token }, { origin: 'https://evil.example' });
      assert.equal(sse.status, 403);
      const stream = await uniHttpStream(s, { token }, { origin: 'https://evil.example' });
      assert.equal(stream.status, 403);
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/connection/uni_websocket`, {
        headers: { origin: 'https://evil.example' },
      });
      ws.on('error', () => {});
      const status = await new Promise<number>((r) =>
        ws.once('unexpected-response', (_req, res) => r(res.statusCode!)),
      );
      assert.equal(status, 403);
      const ok = await uniSse(s, { token }, { origin: 'https://app.example' });
      assert.equal(ok.status, 200);
      ok.close();
    } finally {
      await s.close();
    }
  });

  test('HERALD_IP_CONNECTION_LIMIT counts unidirectional connections with the others', async () => {
    const s = await startHerald({ env: { ...UNI_ENV, HERALD_IP_CONNECTION_LIMIT: '1' } });
    try {
      const token = await mintToken({ sub: 'ip' });
      const first = await uniSse(s, { token });
      assert.equal(first.status, 200);
      await first.next((m) => m.connect, 'connect push');
      const second = await uniHttpStream(s, { token });
      assert.equal(second.status, 429);
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/connection/uni_websocket`);
      ws.on('error', () => {});
      const status = await new Promise<number>((r) =>
        ws.once('unexpected-response', (_req, res) => r(res.statusCode!)),
      );
      assert.equal(status, 429);
      first.close();
    } finally {
      await s.close();
    }
  });

  test('a uni_http_stream reader that stops reading is closed as slow (3008) while publications go on', async () => {
    const s = await startHerald({ env: { ...UNI_ENV, HERALD_MAX_SEND_BUFFER: '65536' } });
    const slow = net.connect(s.port, '127.0.0.1');
    try {
      await new Promise((r) => slow.once('connect', r));
      const body = JSON.stringify({ token: await mintToken({ sub: 'slow', channels: ['firehose'] }) });
      slow.write(
        `POST /connection/uni_http_stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      await waitFor(() => s.herald.connectionCount === 1, 'slow reader connected');
      slow.pause();
      const payload = 'z'.repeat(8000);
      for (let i = 0; i < 1500 && s.herald.connectionCount === 1; i++) {
        await s.herald.publish('firehose', { i, payload });
        if (i % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      await waitFor(() => s.herald.connectionCount === 0, 'slow reader closed', 10_000);
      const disconnects = await s.herald.metrics.disconnects.get();
      assert.ok(
        disconnects.values.some((v) => v.labels.code === '3008' && v.value >= 1),
        'a 3008 close was counted',
      );
    } finally {
      slow.destroy();
      await s.close();
    }
  });

  test('uni_websocket.join_push_messages puts the pushes of one turn in one frame, newline-separated', async () => {
    const s = await startHerald({
      env: { ...UNI_ENV, HERALD_UNI_WEBSOCKET_JOIN_PUSH_MESSAGES: 'true' },
    });
    try {
      const c = await uniWs(s, { token: await mintToken({ sub: 'j', channels: ['batch'] }) });
      await c.next((m) => m.connect, 'connect push');
      // Two publications fanned out in the same event-loop turn (the memory engine delivers synchronously).
      await Promise.all([s.herald.publish('batch', 1), s.herald.publish('batch', 2)]);
      await waitFor(() => c.messages.filter((m) => m.pub).length === 2, 'both publications');
      assert.ok(
        c.frames.some((f) => f.split('\n').length === 2),
        `one frame holds both: ${JSON.stringify(c.frames)}`,
      );
      c.ws.terminate();
    } finally {
      await s.close();
    }
  });

  test('the unidirectional endpoints are off unless enabled', async () => {
    const s = await startHerald();
    try {
      const res = await fetch(`${s.httpUrl}/connection/uni_sse`);
      assert.equal(res.status, 404);
      await res.text();
    } finally {
      await s.close();
    }
  });
});
