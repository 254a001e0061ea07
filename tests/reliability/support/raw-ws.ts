// WebSocket by hand over a TCP socket: for clients the `ws` package will not imitate (never reading, never finishing
// a handshake) and to read the close code a server sends.
import net from 'node:net';

const UPGRADE = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

/** A masked client text frame (any length). */
export function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  let header: Buffer;
  if (payload.length < 126) header = Buffer.from([0x81, 0x80 | payload.length]);
  else if (payload.length < 65536) header = Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255]);
  else {
    header = Buffer.alloc(10);
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([header, mask, masked]);
}

/** Parses what a server sends after the 101: text frames (as JSON lines) and the close frame's code. */
export class ServerFrames {
  private buf: Buffer = Buffer.alloc(0);
  readonly messages: any[] = [];
  closeCode: number | undefined;
  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.buf.length < 2) return;
      const opcode = this.buf[0]! & 0x0f;
      let len = this.buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buf.length < off + len) return;
      const payload = this.buf.subarray(off, off + len);
      this.buf = this.buf.subarray(off + len);
      if (opcode === 0x1) {
        for (const line of payload.toString('utf8').split('\n')) if (line.trim()) this.messages.push(JSON.parse(line));
      } else if (opcode === 0x8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      }
    }
  }
}

export interface RawSocket {
  socket: net.Socket;
  /** The HTTP status line's code of the upgrade answer. */
  status: number;
  frames: ServerFrames;
  closed: Promise<void>;
  send(...commands: unknown[]): void;
}

/**
 * Opens a TCP connection and sends the upgrade request; resolves with the answer's status. After a 101, server frames
 * are parsed into `frames` unless `read` is false: then the socket is paused right after the handshake and never read.
 */
export function rawUpgrade(
  port: number,
  opts: { path?: string; localAddress?: string; read?: boolean } = {},
): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: opts.localAddress });
    const frames = new ServerFrames();
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => {});
    let head = Buffer.alloc(0);
    let status = 0;
    const onData = (chunk: Buffer) => {
      if (status) return frames.push(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head.toString('latin1'))?.[1] ?? 0);
      const rest = head.subarray(end + 4);
      if (opts.read === false && status === 101) {
        socket.off('data', onData);
        socket.pause();
      } else if (rest.length) frames.push(rest);
      resolve({
        socket,
        status,
        frames,
        closed,
        send: (...commands) => socket.write(clientFrame(commands.map((c) => JSON.stringify(c)).join('\n'))),
      });
    };
    socket.on('data', onData);
    socket.once('connect', () => socket.write(UPGRADE(opts.path ?? '/connection/websocket')));
    socket.once('close', () => {
      if (!status) reject(new Error('socket closed before the upgrade answer'));
    });
  });
}
