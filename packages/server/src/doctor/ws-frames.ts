/**
 * The client half of RFC 6455 framing, small enough to read in one sitting. The doctor speaks WebSocket itself
 * (instead of importing `ws`, which only transport/ may do, or Node's global WebSocket, absent before Node 22)
 * because it needs what browsers and `ws` keep to themselves: the raw answer to the upgrade and the exact close
 * code and reason. Only what a diagnosis needs: masked text frames out; text, close, ping and pong in.
 */
import { createHash, randomBytes } from 'node:crypto';

export const Opcode = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The Sec-WebSocket-Accept a server must send back for `key` (RFC 6455 section 4.2.2). */
export function expectedAccept(key: string): string {
  return createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
}

export function newKey(): string {
  return randomBytes(16).toString('base64');
}

/** A client frame: always masked (RFC 6455 section 5.3). */
export function encodeClientFrame(opcode: number, payload: Buffer, mask: Buffer = randomBytes(4)): Buffer {
  const len = payload.length;
  const headLen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.alloc(headLen + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  mask.copy(out, headLen);
  for (let i = 0; i < len; i++) out[headLen + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

export function encodeClose(code: number, reason = ''): Buffer {
  const r = Buffer.from(reason);
  const p = Buffer.alloc(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  return encodeClientFrame(Opcode.close, p);
}

/** Incremental frame parser: push bytes, get whole frames. Accepts masked frames too (a misbehaving peer). */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const f = this.next();
      if (!f) return frames;
      frames.push(f);
    }
  }

  private next(): Frame | undefined {
    const b = this.buf;
    if (b.length < 2) return undefined;
    const fin = (b[0]! & 0x80) !== 0;
    const opcode = b[0]! & 0x0f;
    const masked = (b[1]! & 0x80) !== 0;
    let len = b[1]! & 0x7f;
    let pos = 2;
    if (len === 126) {
      if (b.length < 4) return undefined;
      len = b.readUInt16BE(2);
      pos = 4;
    } else if (len === 127) {
      if (b.length < 10) return undefined;
      len = Number(b.readBigUInt64BE(2));
      pos = 10;
    }
    const maskAt = pos;
    if (masked) pos += 4;
    if (b.length < pos + len) return undefined;
    let payload = b.subarray(pos, pos + len);
    if (masked) {
      const mask = b.subarray(maskAt, maskAt + 4);
      payload = Buffer.from(payload.map((x, i) => x ^ mask[i & 3]!));
    }
    this.buf = b.subarray(pos + len);
    return { fin, opcode, payload };
  }
}

/** Code and reason of a close frame's payload (1005 "no status" when empty). */
export function parseClose(payload: Buffer): { code: number; reason: string } {
  if (payload.length < 2) return { code: 1005, reason: '' };
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8') };
}
