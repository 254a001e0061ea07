import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { engineNames } from '../support/engines.js';
import { startHerald, type TestServer } from '../support/herald.js';

/** A hand-driven WebSocket client over TCP, for frames the SDK never sends. */
async function rawSocket(s: TestServer): Promise<{ sock: net.Socket; closeCode: () => Promise<number> }> {
  const sock = net.connect(s.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  sock.write(
    'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  let buf = Buffer.alloc(0);
  let upgraded = false;
  const closeCode = new Promise<number>((resolve) => {
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        upgraded = true;
        buf = buf.subarray(end + 4);
      }
      // Look for a close frame (opcode 8) from the server: 0x88, len, code.
      for (let i = 0; i + 3 < buf.length; i++) {
        if (buf[i] === 0x88) {
          resolve(buf.readUInt16BE(i + 2));
          return;
        }
      }
    });
    sock.on('close', () => resolve(-1));
    sock.on('error', () => resolve(-1));
  });
  await new Promise<void>((r) => {
    const check = () => (upgraded ? r() : setTimeout(check, 5));
    check();
  });
  return { sock, closeCode: () => closeCode };
}

function frame(opcode: number, payload: Buffer, opts: { fin?: boolean; mask?: boolean; rsv?: number } = {}): Buffer {
  const fin = opts.fin ?? true;
  const mask = opts.mask ?? true;
  const b0 = (fin ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode;
  const key = Buffer.from([9, 8, 7, 6]);
  const body = mask ? Buffer.from(payload.map((b, i) => b ^ key[i % 4]!)) : payload;
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([b0, (mask ? 0x80 : 0) | len])
      : Buffer.from([b0, (mask ? 0x80 : 0) | 126, len >> 8, len & 255]);
  return Buffer.concat([head, mask ? key : Buffer.alloc(0), body]);
}

for (const engineName of engineNames) {
  describe(`raw WebSocket frames (${engineName} engine)`, { timeout: 30_000 }, () => {
    const cases: [string, (s: net.Socket) => void, number][] = [
      [
        'an unmasked client frame is closed with 1002',
        (s) => s.write(frame(1, Buffer.from('{}'), { mask: false })),
        1002,
      ],
      ['reserved bits set are closed with 1002', (s) => s.write(frame(1, Buffer.from('{}'), { rsv: 4 })), 1002],
      ['an unknown opcode is closed with 1002', (s) => s.write(frame(3, Buffer.from('{}'))), 1002],
      [
        'invalid UTF-8 in a text frame is closed with 1007',
        (s) => s.write(frame(1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))),
        1007,
      ],
      [
        'a message split into too many fragments is closed with 1008',
        (s) => {
          s.write(frame(1, Buffer.from('{'), { fin: false }));
          for (let i = 0; i < 300; i++) s.write(frame(0, Buffer.from(' '), { fin: false }));
        },
        1008,
      ],
    ];
    for (const [name, send, expected] of cases) {
      test(name, async () => {
        const s = await startHerald({ engineName });
        try {
          const { sock, closeCode } = await rawSocket(s);
          send(sock);
          assert.equal(await closeCode(), expected);
          sock.destroy();
          // The process and the listener are unharmed.
          assert.equal((await fetch(`${s.httpUrl}/health`)).status, 200);
        } finally {
          await s.close();
        }
      });
    }
  });
}
