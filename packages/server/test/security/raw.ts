import net from 'node:net';
import { randomBytes } from 'node:crypto';

/**
 * A WebSocket client written by hand over TCP, for what no library sends: unmasked frames, reserved bits, unknown
 * opcodes, invalid UTF-8, endless fragments, lying length fields. It parses the server's frames properly (so a
 * close frame is found by structure, not by scanning for a byte).
 */
export interface ServerFrame {
  opcode: number;
  fin: boolean;
  payload: Buffer;
}

export interface RawWs {
  sock: net.Socket;
  /** The HTTP response head of the upgrade. */
  head: string;
  status: number;
  frames: ServerFrame[];
  /** Text of every text frame received. */
  texts(): string[];
  /** Resolves with the server's close frame (code and reason), or code -1 if the TCP connection ended without one. */
  closed: Promise<{ code: number; reason: string }>;
  /** For a refused upgrade: the response body received so far. */
  body(): string;
  write(b: Buffer | string): void;
  /** Sends a masked text frame. */
  sendText(text: string): void;
  destroy(): void;
}

export interface UpgradeOptions {
  path?: string;
  /** Headers over the defaults; `undefined` leaves a default header out. */
  headers?: Record<string, string | undefined>;
  /** Extra raw header lines written as is (for 2,000-header requests). */
  rawHeaderLines?: string[];
}

export function frame(
  opcode: number,
  payload: Buffer,
  opts: { fin?: boolean; mask?: boolean; rsv?: number; declaredLength?: bigint } = {},
): Buffer {
  const fin = opts.fin ?? true;
  const mask = opts.mask ?? true;
  const b0 = (fin ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode;
  const m = mask ? 0x80 : 0;
  const len = opts.declaredLength ?? BigInt(payload.length);
  let head: Buffer;
  if (len < 126n) head = Buffer.from([b0, m | Number(len)]);
  else if (len < 65536n) {
    head = Buffer.alloc(4);
    head[0] = b0;
    head[1] = m | 126;
    head.writeUInt16BE(Number(len), 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = m | 127;
    head.writeBigUInt64BE(len, 2);
  }
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ key[i % 4]!;
  return Buffer.concat([head, key, body]);
}

/** Parses complete frames from the front of `buf`; returns them and the unparsed rest. */
function parseFrames(buf: Buffer): { frames: ServerFrame[]; rest: Buffer } {
  const frames: ServerFrame[] = [];
  let i = 0;
  for (;;) {
    if (buf.length - i < 2) break;
    const b0 = buf[i]!;
    const b1 = buf[i + 1]!;
    let len = b1 & 0x7f;
    let off = i + 2;
    if (len === 126) {
      if (buf.length - i < 4) break;
      len = buf.readUInt16BE(i + 2);
      off = i + 4;
    } else if (len === 127) {
      if (buf.length - i < 10) break;
      len = Number(buf.readBigUInt64BE(i + 2));
      off = i + 10;
    }
    if (b1 & 0x80) off += 4; // servers never mask, but parse it anyway
    if (buf.length < off + len) break;
    frames.push({ opcode: b0 & 0x0f, fin: (b0 & 0x80) !== 0, payload: buf.subarray(off, off + len) });
    i = off + len;
  }
  return { frames, rest: buf.subarray(i) };
}

/** Opens a TCP connection and sends an upgrade request; resolves once the response head arrived. */
export async function rawUpgrade(port: number, opts: UpgradeOptions = {}): Promise<RawWs> {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  const headers: Record<string, string | undefined> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...opts.headers,
  };
  const lines = [
    `GET ${opts.path ?? '/connection/websocket'} HTTP/1.1`,
    ...Object.entries(headers)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}: ${v}`),
    ...(opts.rawHeaderLines ?? []),
  ];
  sock.write(lines.join('\r\n') + '\r\n\r\n');

  let buf = Buffer.alloc(0);
  let head: string | undefined;
  const frames: ServerFrame[] = [];
  let resolveClosed!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r));
  let resolveHead!: () => void;
  const headArrived = new Promise<void>((r) => (resolveHead = r));
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (head === undefined) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      head = buf.subarray(0, end).toString('latin1');
      buf = buf.subarray(end + 4);
      resolveHead();
      if (!head.startsWith('HTTP/1.1 101')) return; // a refusal: the body follows; nothing to parse as frames
    }
    if (!head.startsWith('HTTP/1.1 101')) return;
    const parsed = parseFrames(buf);
    buf = parsed.rest;
    for (const f of parsed.frames) {
      frames.push(f);
      if (f.opcode === 8) {
        resolveClosed({
          code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005,
          reason: f.payload.subarray(2).toString('utf8'),
        });
      }
    }
  });
  sock.on('close', () => {
    resolveHead();
    resolveClosed({ code: -1, reason: '' });
  });
  await headArrived;
  const h = head ?? '';
  const ws: RawWs = {
    sock,
    head: h,
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(h)?.[1] ?? 0),
    frames,
    texts: () => frames.filter((f) => f.opcode === 1).map((f) => f.payload.toString('utf8')),
    closed,
    body: () => buf.toString('utf8'),
    write: (b) => {
      if (!sock.destroyed) sock.write(b);
    },
    sendText: (text) => {
      if (!sock.destroyed) sock.write(frame(1, Buffer.from(text)));
    },
    destroy: () => sock.destroy(),
  };
  return ws;
}

/** The body of a refused upgrade, once the server has closed the connection. */
export async function refusalBody(ws: RawWs): Promise<string> {
  await ws.closed;
  return ws.body();
}
