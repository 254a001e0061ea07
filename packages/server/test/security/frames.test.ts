import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { deflateRawSync } from 'node:zlib';
import { startHerald, waitFor, type TestServer, RawClient } from '../support/herald.js';
import { createHerald } from '../../src/index.js';
import { SECRET } from '../support/herald.js';
import { frame, rawUpgrade } from './raw.js';
import { assertNoStack, assertUnaffected, bystander, connectedRaw, heapUsed, securityChannels } from './common.js';
import { connect as tcpConnect } from 'node:net';

/**
 * What this Node's HTTP server answers a request with more headers than `maxHeadersCount`: Node 20 drops the extra
 * headers (so a WebSocket key past the limit is missing and ws refuses the handshake with 400), newer Node refuses
 * the request itself with 431 before any upgrade handler runs. Measured on a plain server, independently of Herald.
 */
async function statusPastHeaderCount(): Promise<{ refusesItself: boolean }> {
  const server = createServer((_req, res) => res.end('ok'));
  server.maxHeadersCount = 10;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const sock = tcpConnect((server.address() as { port: number }).port, '127.0.0.1');
    sock.write(['GET / HTTP/1.1', 'Host: x', ...Array.from({ length: 20 }, () => 'a:1')].join('\r\n') + '\r\n\r\n');
    const line = await new Promise<string>((r) =>
      sock.once('data', (b: Buffer) => r(b.toString().split('\r\n')[0] ?? '')),
    );
    sock.destroy();
    return { refusesItself: / 431 /.test(line) };
  } finally {
    await new Promise((r) => server.close(r));
  }
}
const pastHeaderCount = await statusPastHeaderCount();
/** The answer to an upgrade whose WebSocket key is past the header count limit, on this Node. */
const EXPECTED_PAST_COUNT = pastHeaderCount.refusesItself ? 431 : 400;

/**
 * docs/security.md, "Frames and messages": hostile WebSocket frames over raw TCP. Each case asserts the close code,
 * that the reason carries no stack trace, and that a bystander client and /health are unaffected.
 */
describe('hostile WebSocket frames', { timeout: 120_000 }, () => {
  let s: TestServer;
  let watcher: RawClient;
  before(async () => {
    s = await startHerald({ config: securityChannels, env: { HERALD_MAX_MESSAGE_SIZE: '65536' } });
    watcher = await bystander(s, 'frames');
  });
  after(async () => {
    watcher.close();
    await s.close();
  });

  const cases: [string, () => Buffer[], number][] = [
    [
      'a message one byte over HERALD_MAX_MESSAGE_SIZE is closed with 1009',
      () => [frame(1, Buffer.alloc(65537, 0x20))],
      1009,
    ],
    [
      'a frame header declaring a 1 TB payload is closed with 1009 before any payload arrives',
      () => [frame(1, Buffer.alloc(0), { declaredLength: 1n << 40n })],
      1009,
    ],
    [
      'fragments that add up past the size limit are closed with 1009',
      () => [
        frame(1, Buffer.alloc(40_000, 0x20), { fin: false }),
        frame(0, Buffer.alloc(40_000, 0x20), { fin: false }),
      ],
      1009,
    ],
    ['an unmasked client frame is closed with 1002', () => [frame(1, Buffer.from('{}'), { mask: false })], 1002],
    ['a frame with reserved bit RSV2 set is closed with 1002', () => [frame(1, Buffer.from('{}'), { rsv: 2 })], 1002],
    ['a frame with reserved bit RSV3 set is closed with 1002', () => [frame(1, Buffer.from('{}'), { rsv: 1 })], 1002],
    ['a non-control reserved opcode (3) is closed with 1002', () => [frame(3, Buffer.from('{}'))], 1002],
    ['a control reserved opcode (0xB) is closed with 1002', () => [frame(0xb, Buffer.from('x'))], 1002],
    ['a continuation frame with no message to continue is closed with 1002', () => [frame(0, Buffer.from('{}'))], 1002],
    [
      'a fragmented ping (control frames must not be fragmented) is closed with 1002',
      () => [frame(9, Buffer.from('x'), { fin: false })],
      1002,
    ],
    [
      'a ping with a 126-byte payload (control frames carry at most 125) is closed with 1002',
      () => [frame(9, Buffer.alloc(126, 0x61))],
      1002,
    ],
    [
      'a new text message inside an unfinished fragmented one is closed with 1002',
      () => [frame(1, Buffer.from('{'), { fin: false }), frame(1, Buffer.from('{}'))],
      1002,
    ],
    [
      'invalid UTF-8 in a text frame is closed with 1007',
      () => [frame(1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))],
      1007,
    ],
    [
      'an overlong UTF-8 encoding of "/" is closed with 1007',
      () => [frame(1, Buffer.from([0x22, 0xc0, 0xaf, 0x22]))],
      1007,
    ],
    [
      'a UTF-16 surrogate encoded in UTF-8 is closed with 1007',
      () => [frame(1, Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]))],
      1007,
    ],
    [
      'invalid UTF-8 split across fragments is closed with 1007',
      () => [frame(1, Buffer.from([0x22, 0xe2, 0x82]), { fin: false }), frame(0, Buffer.from([0x28, 0x22]))],
      1007,
    ],
    [
      'endless 1-byte fragments are closed with 1008 after 128',
      () => [
        frame(1, Buffer.from('['), { fin: false }),
        ...Array.from({ length: 400 }, () => frame(0, Buffer.from(' '), { fin: false })),
      ],
      1008,
    ],
  ];

  for (const [name, build, expected] of cases) {
    test(name, async () => {
      const ws = await connectedRaw(s);
      for (const b of build()) ws.write(b);
      const closed = await ws.closed;
      ws.destroy();
      assert.equal(closed.code, expected, `close code (reason "${closed.reason}")`);
      assertNoStack(closed.reason, 'the close reason');
      await assertUnaffected(s, watcher, 'frames');
    });
  }

  test('the same frames before the connect command get the same codes (no session needed to be refused)', async () => {
    for (const [b, code] of [
      [frame(1, Buffer.from('{}'), { mask: false }), 1002],
      [frame(1, Buffer.from([0xff])), 1007],
      [frame(1, Buffer.alloc(70_000)), 1009],
    ] as const) {
      const ws = await rawUpgrade(s.port);
      assert.equal(ws.status, 101);
      ws.write(b);
      assert.equal((await ws.closed).code, code);
      ws.destroy();
    }
    await assertUnaffected(s, watcher, 'frames');
  });

  test('50 sockets flooding 1-byte fragments are all closed with 1008, and the heap and socket count return to flat', async () => {
    const round = async (): Promise<number[]> => {
      const socks = await Promise.all(Array.from({ length: 50 }, () => connectedRaw(s, 'flooder')));
      for (const ws of socks) {
        ws.write(frame(1, Buffer.from('['), { fin: false }));
        // "Endless": far more than the server accepts; it must stop reading long before the end.
        ws.write(Buffer.concat(Array.from({ length: 2000 }, () => frame(0, Buffer.from(' '), { fin: false }))));
      }
      const codes = await Promise.all(socks.map(async (ws) => (await ws.closed).code));
      for (const ws of socks) ws.destroy();
      return codes;
    };
    // A first round warms up code paths and lazily built objects; the second must not keep more.
    assert.deepEqual(await round(), Array(50).fill(1008));
    await waitFor(() => s.herald.connectionCount === 1, 'only the bystander left after round 1');
    const heapAfterFirst = heapUsed();
    assert.deepEqual(await round(), Array(50).fill(1008));
    await waitFor(() => s.herald.connectionCount === 1, 'only the bystander left after round 2');
    const heapAfterSecond = heapUsed();
    const grownMiB = (heapAfterSecond - heapAfterFirst) / 2 ** 20;
    // 50 sockets' worth of leaked fragments, buffers and sessions would be far above this; measured growth is logged.
    console.log(`# heap growth between rounds of 50 fragment floods: ${grownMiB.toFixed(2)} MiB`);
    assert.ok(grownMiB < 8, `heap grew ${grownMiB.toFixed(2)} MiB between two identical rounds`);
    await assertUnaffected(s, watcher, 'frames');
  });

  test('permessage-deflate is never negotiated, and a compressed deflate bomb frame is closed with 1002 without inflating', async () => {
    const ws = await rawUpgrade(s.port, {
      headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' },
    });
    assert.equal(ws.status, 101);
    assert.doesNotMatch(ws.head, /sec-websocket-extensions/i, 'the server accepts no extension');
    // 16 MiB of spaces deflate to ~16 KB: inflating it would blow past the 64 KB message limit.
    const bomb = deflateRawSync(Buffer.alloc(16 * 2 ** 20, 0x20));
    assert.ok(bomb.length < 65536);
    const before = process.memoryUsage().rss;
    ws.write(frame(1, bomb, { rsv: 4 }));
    const closed = await ws.closed;
    ws.destroy();
    assert.equal(closed.code, 1002, 'RSV1 without a negotiated extension is a protocol error');
    const grownMiB = (process.memoryUsage().rss - before) / 2 ** 20;
    console.log(`# RSS change after the deflate bomb: ${grownMiB.toFixed(1)} MiB`);
    assert.ok(grownMiB < 12, `the bomb was not inflated (RSS grew ${grownMiB.toFixed(1)} MiB, the bomb is 16 MiB)`);
    await assertUnaffected(s, watcher, 'frames');
  });

  test('an upgrade with 2,000 request headers (ws CVE-2024-37890) does not crash the listener', async () => {
    // Junk first (short lines, under Node's 16 KB header size limit): with the WebSocket key past the count limit, a
    // vulnerable ws dereferenced the missing key and threw.
    const junk = Array.from({ length: 2000 }, () => 'a:1');
    const ws = await rawUpgrade(s.port, {
      headers: { 'Sec-WebSocket-Key': undefined },
      rawHeaderLines: [...junk, 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='],
    });
    ws.destroy();
    // The key is past the header count limit: Node drops it (ws refuses the handshake, 400) or refuses the request
    // itself (431, newer Node); either way this Node's one answer, never a crash.
    assert.equal(ws.status, EXPECTED_PAST_COUNT);
    await assertUnaffected(s, watcher, 'frames');
    const normal = await connectedRaw(s);
    normal.destroy();
  });
});

test(
  'herald.attach() on an app server that allows few headers survives 2,000 headers placed before the WebSocket key',
  { timeout: 30_000 },
  async () => {
    const server = createServer((_req, res) => res.end('app'));
    server.maxHeadersCount = 50; // the CVE's trigger: the handshake headers are dropped past this count
    const herald = createHerald({ logger: false, env: { HERALD_TOKEN_SECRET: SECRET }, config: securityChannels });
    herald.attach(server, { path: '/ws' });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      const key = 'dGhlIHNhbXBsZSBub25jZQ==';
      const sock = await rawUpgrade(port, {
        path: '/ws',
        headers: { 'Sec-WebSocket-Key': undefined },
        rawHeaderLines: [...Array.from({ length: 2000 }, () => 'a:1'), `Sec-WebSocket-Key: ${key}`],
      });
      sock.destroy();
      // The handshake headers past the limit are gone or refused: this Node's one answer (see EXPECTED_PAST_COUNT).
      assert.equal(sock.status, EXPECTED_PAST_COUNT);
      const r = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(await r.text(), 'app');
      const ok = await rawUpgrade(port, { path: '/ws' });
      assert.equal(ok.status, 101, 'a normal upgrade still works');
      ok.destroy();
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', onUncaught);
      await herald.close();
      await new Promise((r) => server.close(r));
    }
  },
);
