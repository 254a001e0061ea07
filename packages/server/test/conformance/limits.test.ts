import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { engineNames } from '../support/engines.js';
import {
  RawClient,
  encodings,
  mintToken,
  newClient,
  startHerald,
  waitFor,
  type TestServer,
} from '../support/herald.js';

const open = { channel: { withoutNamespace: { allow_subscribe_for_client: true } } };

async function withServer(
  engineName: string,
  env: Record<string, string>,
  fn: (s: TestServer) => Promise<void>,
): Promise<void> {
  const s = await startHerald({ engineName, env, config: open });
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

async function connected(s: TestServer, user = 'u'): Promise<RawClient> {
  const raw = await RawClient.open(s.wsUrl);
  raw.send({ id: 1, connect: { token: await mintToken({ sub: user }) } });
  await raw.reply(1);
  return raw;
}

for (const engineName of engineNames) {
  describe(`limits, pings and bad input (${engineName} engine)`, { timeout: 60_000 }, () => {
    test('a message over the size limit closes the connection with 1009', async () => {
      await withServer(engineName, { HERALD_MAX_MESSAGE_SIZE: '1024' }, async (s) => {
        const raw = await connected(s);
        raw.send({ id: 2, publish: { channel: 'x', data: 'y'.repeat(2000) } });
        assert.equal((await raw.closed()).code, 1009);
      });
    });

    test('subscriptions past the channel limit are refused with 106', async () => {
      await withServer(engineName, { HERALD_CHANNEL_LIMIT: '2' }, async (s) => {
        const raw = await connected(s);
        raw.send(
          { id: 2, subscribe: { channel: 'a' } },
          { id: 3, subscribe: { channel: 'b' } },
          { id: 4, subscribe: { channel: 'c' } },
        );
        assert.deepEqual((await raw.reply(3)).subscribe, {});
        assert.equal((await raw.reply(4)).error.code, 106);
        raw.close();
      });
    });

    test('commands over the rate limit get 111, then the connection is closed with 3013', async () => {
      await withServer(engineName, { HERALD_COMMAND_RATE: '5' }, async (s) => {
        const raw = await connected(s);
        const burst = Array.from({ length: 14 }, (_, i) => ({ id: i + 2, presence_stats: { channel: 'a' } }));
        raw.send(...burst);
        await waitFor(() => raw.messages.some((m) => m.error?.code === 111), 'a 111 reply');
        const more = Array.from({ length: 30 }, (_, i) => ({ id: i + 100, presence_stats: { channel: 'a' } }));
        raw.send(...more);
        assert.equal((await raw.closed()).code, 3013);
      });
    });

    test('a socket that never sends connect is closed with 3502 after the connect timeout', async () => {
      await withServer(engineName, { HERALD_CONNECT_TIMEOUT: '1s' }, async (s) => {
        const raw = await RawClient.open(s.wsUrl);
        const closed = await raw.closed(5000);
        assert.equal(closed.code, 3502);
      });
    });

    test('pings arrive as {} and a client that never answers is closed with 3012', async () => {
      await withServer(engineName, { HERALD_PING_INTERVAL: '1s', HERALD_PONG_TIMEOUT: '1s' }, async (s) => {
        const raw = await RawClient.open(s.wsUrl);
        raw.send({ id: 1, connect: { token: await mintToken({ sub: 'u' }) } });
        const r = await raw.reply(1);
        assert.equal(r.connect.ping, 1);
        await waitFor(() => raw.messages.some((m) => Object.keys(m).length === 0), 'a ping');
        assert.equal((await raw.closed(6000)).code, 3012);
      });
    });

    test('in protobuf, pings arrive as empty Replies and a client that never answers is closed with 3012', async () => {
      await withServer(engineName, { HERALD_PING_INTERVAL: '1s', HERALD_PONG_TIMEOUT: '1s' }, async (s) => {
        const WebSocket = (await import('ws')).default;
        const ws = new WebSocket(s.wsUrl, 'centrifuge-protobuf');
        const frames: Buffer[] = [];
        ws.on('message', (d) => frames.push(d as Buffer));
        const closed = new Promise<number>((r) => ws.on('close', (c) => r(c)));
        await new Promise((r) => ws.once('open', r));
        // Command { id: 1, connect: { token } }, length-delimited, written by hand.
        const varint = (n: number) => (n < 128 ? [n] : [0x80 | (n & 0x7f), n >> 7]);
        const delimited = (b: Buffer) => Buffer.concat([Buffer.from(varint(b.length)), b]);
        const token = Buffer.from(await mintToken({ sub: 'u' }));
        const request = Buffer.concat([Buffer.from([10]), delimited(token)]);
        ws.send(delimited(Buffer.concat([Buffer.from([8, 1, 0x22]), delimited(request)])));
        await waitFor(() => frames.some((f) => f.equals(Buffer.from([0]))), 'an empty Reply (the ping)');
        assert.equal(await closed, 3012);
      });
    });

    for (const encoding of encodings)
      test(`a ${encoding} client that answers pings stays connected`, async () => {
        await withServer(engineName, { HERALD_PING_INTERVAL: '1s', HERALD_PONG_TIMEOUT: '1s' }, async (s) => {
          const c = newClient(s.wsUrl, { token: await mintToken({ sub: 'u' }) }, encoding);
          let disconnects = 0;
          c.on('disconnected', () => disconnects++);
          const up = new Promise((r) => c.once('connected', r));
          c.connect();
          await up;
          await new Promise((r) => setTimeout(r, 3500));
          assert.equal(disconnects, 0);
          assert.equal(c.state, 'connected');
          c.disconnect();
        });
      });

    test('bad commands get error replies and too many of them close with 3509', async () => {
      await withServer(engineName, { HERALD_MAX_ERRORS: '3' }, async (s) => {
        const raw = await connected(s);
        raw.send({ id: 2, nonsense: {} });
        assert.equal((await raw.reply(2)).error.code, 104);
        raw.send({ id: 3, subscribe: { channel: 42 } });
        assert.equal((await raw.reply(3)).error.code, 107);
        raw.send('{not json');
        await waitFor(() => raw.messages.some((m) => m.error && !m.id), 'an error for malformed JSON');
        raw.send({ id: 4, publish: 'not an object' });
        assert.equal((await raw.closed()).code, 3509);
      });
    });

    test('commands before connect close the connection with 3501', async () => {
      await withServer(engineName, {}, async (s) => {
        const raw = await RawClient.open(s.wsUrl);
        raw.send({ id: 1, subscribe: { channel: 'a' } });
        assert.equal((await raw.closed()).code, 3501);
      });
    });

    test('a user over the per-user connection limit is closed with 3504', async () => {
      await withServer(engineName, { HERALD_USER_CONNECTION_LIMIT: '2' }, async (s) => {
        const a = await connected(s, 'lim');
        const b = await connected(s, 'lim');
        const c = await RawClient.open(s.wsUrl);
        c.send({ id: 1, connect: { token: await mintToken({ sub: 'lim' }) } });
        assert.equal((await c.closed()).code, 3504);
        a.close();
        b.close();
      });
    });

    test('a slow client is closed with 3008 while the others get everything', async () => {
      await withServer(engineName, { HERALD_MAX_SEND_BUFFER: '65536' }, async (s) => {
        // The slow client: a raw TCP socket that completes the upgrade and then stops reading.
        const slow = net.connect(s.port, '127.0.0.1');
        await new Promise((r) => slow.once('connect', r));
        slow.write(
          `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
        await new Promise((r) => slow.once('data', r));
        const frame = (text: string) => {
          const payload = Buffer.from(text);
          const mask = Buffer.from([1, 2, 3, 4]);
          const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
          const header =
            payload.length < 126
              ? Buffer.from([0x81, 0x80 | payload.length])
              : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255]);
          return Buffer.concat([header, mask, masked]);
        };
        slow.write(
          frame(
            JSON.stringify({ id: 1, connect: { token: await mintToken({ sub: 'slow' }) } }) +
              '\n' +
              JSON.stringify({ id: 2, subscribe: { channel: 'firehose' } }),
          ),
        );
        slow.pause();
        await waitFor(() => s.herald.connectionCount === 1, 'slow client connected');
        const fast = newClient(s.wsUrl, { token: await mintToken({ sub: 'fast' }) });
        try {
          let got = 0;
          const sub = fast.newSubscription('firehose');
          sub.on('publication', () => got++);
          const ready = new Promise((r) => sub.once('subscribed', r));
          sub.subscribe();
          fast.connect();
          await ready;
          const payload = 'z'.repeat(8000);
          // 12 MB: more than the kernel's socket buffers can absorb for a reader that stopped.
          for (let i = 0; i < 1500; i++) {
            await s.herald.publish('firehose', { i, payload });
            if (i % 20 === 0) await new Promise((r) => setImmediate(r));
          }
          await waitFor(() => got === 1500, `fast client gets all 1500 (got ${got}, state ${fast.state})`, 10_000);
          await waitFor(() => s.herald.connectionCount === 1, 'slow client closed', 10_000);
          const disconnects = await s.herald.metrics.disconnects.get();
          assert.ok(
            disconnects.values.some((v) => v.labels.code === '3008' && v.value >= 1),
            'a 3008 close was counted',
          );
        } finally {
          fast.disconnect();
          slow.destroy();
        }
      });
    });

    test('a binary frame on a JSON connection (no protobuf subprotocol asked for) is answered with close 3506', async () => {
      await withServer(engineName, {}, async (s) => {
        const WebSocket = (await import('ws')).default;
        const ws = new WebSocket(s.wsUrl);
        await new Promise((r) => ws.once('open', r));
        const closed = new Promise<number>((r) => ws.on('close', (c) => r(c)));
        ws.send(Buffer.from([10, 0]));
        assert.equal(await closed, 3506);
      });
    });

    test('a plain GET on the WebSocket path answers 426 with the Herald marker and CORS', async () => {
      await withServer(engineName, {}, async (s) => {
        const res = await fetch(`${s.httpUrl}/ws`, { headers: { origin: 'http://localhost:3000' } });
        assert.equal(res.status, 426);
        assert.ok(res.headers.get('x-herald-version'));
        assert.equal(res.headers.get('access-control-allow-origin'), '*');
        assert.equal((await res.json()).server, 'herald');
      });
    });
  });
}
