// The invariant the fan-out (src/transport/websocket.ts) relies on: with permessage-deflate off, ws's Sender writes
// each frame to the socket synchronously inside ws.send and never queues it. The fan-out writes pre-encoded frames
// straight to the same socket (SharedFrame.bytes), so if ws ever held a frame back (queued while "deflating" or
// while reading Blob data), ws's late write and ours could interleave out of order on the wire. This test pins that
// on the real ws over a loopback connection, and fails if ws changes it.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';

/** A server-to-client (unmasked) final text frame, encoded by hand as the fan-out writes pre-encoded bytes. */
function rawTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  assert.ok(payload.length < 126, 'the short frame header form only');
  return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
}

/**
 * ws's Sender internals this test reads (ws 8.x, lib/sender.js):
 * - `_queue`: the frames ws holds back to write later (enqueue()); it must stay empty, or a frame of ours written
 *   after ws.send could overtake ws's own frame;
 * - `_state`: DEFAULT (0) while nothing is in flight; DEFLATING (1) or GET_BLOB_DATA (2) mean a send is pending and
 *   any next send gets queued. It must be back to DEFAULT right after each send returns.
 * If ws renames these fields, the shape checks below fail: re-read sender.js and re-pin the invariant.
 */
interface SenderInternals {
  _queue: unknown[];
  _state: number;
  _bufferedBytes: number;
}
const SENDER_DEFAULT_STATE = 0;

const http = createServer();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
after(async () => {
  wss.close();
  http.closeAllConnections();
  await new Promise<void>((r) => http.close(() => r()));
});

async function connectedPair(): Promise<{ server: WebSocket; socket: Duplex; client: WebSocket }> {
  const accepted = new Promise<{ server: WebSocket; socket: Duplex }>((resolve) => {
    http.once('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      wss.handleUpgrade(req, socket, head, (server) => resolve({ server, socket }));
    });
  });
  if (!http.listening) await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  const { port } = http.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  const [{ server, socket }] = await Promise.all([
    accepted,
    new Promise<void>((r, j) => {
      client.once('open', () => r());
      client.once('error', j);
    }),
  ]);
  return { server, socket, client };
}

describe('ws Sender with permessage-deflate off (the fan-out writes to the socket beside it)', () => {
  it('never queues a frame: after each ws.send in one turn the queue is empty and the sender is idle, and frames written straight to the socket in between arrive in order', async () => {
    const { server, socket, client } = await connectedPair();
    // A failed assertion below must not leave the connection open (the run would then never end).
    client.on('error', () => {});
    const sender = (server as unknown as { _sender: SenderInternals | null })._sender;
    assert.ok(sender, 'ws keeps its Sender in `_sender`');
    assert.ok(Array.isArray(sender._queue), "ws's Sender keeps its held-back frames in `_queue`");
    assert.equal(typeof sender._state, 'number', "ws's Sender keeps its send state in `_state`");

    const count = 300;
    const received: string[] = [];
    const all = new Promise<void>((resolve) => {
      client.on('message', (data) => {
        received.push(String(data));
        if (received.length === 2 * count) resolve();
      });
    });

    const expected: string[] = [];
    // One event-loop turn: ws's writes and ours alternate on the same socket.
    for (let i = 0; i < count; i++) {
      server.send(`ws-${i}`);
      assert.equal(sender._queue.length, 0, `ws queued send ${i} instead of writing it`);
      assert.equal(sender._state, SENDER_DEFAULT_STATE, `ws's Sender is still busy after send ${i}`);
      assert.equal(sender._bufferedBytes, 0, `ws holds bytes of send ${i} back`);
      socket.write(rawTextFrame(`raw-${i}`));
      expected.push(`ws-${i}`, `raw-${i}`);
    }
    await all;
    assert.deepEqual(received, expected);
    client.terminate();
  });
});
