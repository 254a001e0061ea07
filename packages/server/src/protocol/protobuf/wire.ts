/**
 * Protobuf wire format primitives (protobuf.dev/programming-guides/encoding): varints, tags, length-delimited
 * fields. A hand-written reader and writer for the few messages of the client protocol (see schema.ts); the reader
 * never reads past its end and never throws anything but ProtobufError.
 */

export class ProtobufError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtobufError';
  }
}

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** Bytes of a varint: 10 at most (a 64-bit value). */
const MAX_VARINT_BYTES = 10;

export class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /**
   * A varint as a number. Values past 2^53 lose precision (Herald's integers are offsets and codes, far below);
   * more than 10 bytes, or a varint cut by the end, is an error.
   */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.pos >= this.end) throw new ProtobufError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new ProtobufError('varint longer than 10 bytes');
  }

  /** An int32/int64 varint: negative values are sent as 10-byte two's complement. */
  signedVarint(): number {
    const v = this.varint();
    return v >= 2 ** 63 ? v - 2 ** 64 : v;
  }

  /** A length prefix and the bounds of the bytes it announces (checked against the end). */
  lengthDelimited(): [start: number, end: number] {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw new ProtobufError('length past the end of the frame');
    this.pos = start + len;
    return [start, start + len];
  }

  /** Skips a field of an unknown number, as protobuf requires; groups (wire types 3, 4) are refused. */
  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_I32:
        this.advance(4);
        return;
      default:
        throw new ProtobufError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.end - this.pos < n) throw new ProtobufError('truncated field');
    this.pos += n;
  }
}

/** Bytes of `v` as a varint. */
function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Strings up to this many UTF-16 units are encoded in JS; longer ones by Buffer#write (a native call). */
const SHORT_STRING = 48;

/**
 * One growable buffer for a whole message. A nested message is opened with fork() and closed with join(): its
 * length is written in front of it then, moving the body only when the length takes more than one byte. No nested
 * buffers, no copies per level.
 */
export class Writer {
  private buf: Buffer;
  len = 0;
  private readonly starts: number[] = [];

  constructor(capacity = 256) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** A non-negative integer (uint32, uint64 up to 2^53). */
  varint(v: number): void {
    this.reserve(MAX_VARINT_BYTES);
    const buf = this.buf;
    let i = this.len;
    while (v >= 0x80) {
      buf[i++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    buf[i++] = v;
    this.len = i;
  }

  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  uintField(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, WIRE_VARINT);
    this.varint(v);
  }

  /** int32/int64: negative values as 64-bit two's complement. */
  intField(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, WIRE_VARINT);
    this.varint(v < 0 ? 2 ** 64 + v : v);
  }

  boolField(field: number, v: boolean): void {
    if (!v) return;
    this.tag(field, WIRE_VARINT);
    this.buf[this.len++] = 1;
  }

  stringField(field: number, s: string): void {
    if (s.length === 0) return;
    this.utf8Field(field, s);
  }

  /** A string, or a `bytes` field holding a string's UTF-8 bytes (JSON text), written even when empty. */
  utf8Field(field: number, s: string): void {
    this.tag(field, WIRE_LEN);
    if (s.length <= SHORT_STRING) {
      this.fork();
      this.reserve(s.length * 3);
      const buf = this.buf;
      let i = this.len;
      for (let k = 0; k < s.length; k++) {
        let c = s.charCodeAt(k);
        if (c < 0x80) buf[i++] = c;
        else if (c < 0x800) {
          buf[i++] = 0xc0 | (c >> 6);
          buf[i++] = 0x80 | (c & 63);
        } else {
          const next = s.charCodeAt(k + 1);
          if (c >= 0xd800 && c < 0xdc00 && next >= 0xdc00 && next < 0xe000) {
            c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
            k++;
            buf[i++] = 0xf0 | (c >> 18);
            buf[i++] = 0x80 | ((c >> 12) & 63);
          } else {
            // A lone surrogate becomes U+FFFD, as Buffer#write does.
            if (c >= 0xd800 && c < 0xe000) c = 0xfffd;
            buf[i++] = 0xe0 | (c >> 12);
          }
          buf[i++] = 0x80 | ((c >> 6) & 63);
          buf[i++] = 0x80 | (c & 63);
        }
      }
      this.len = i;
      this.join();
      return;
    }
    const n = Buffer.byteLength(s, 'utf8');
    this.varint(n);
    this.reserve(n);
    this.len += this.buf.write(s, this.len, 'utf8');
  }

  /** Opens a length-delimited part (after its tag, or at the start for a delimited message). */
  fork(): void {
    this.reserve(1);
    this.starts.push(this.len);
    this.len += 1;
  }

  /** Opens a nested message field (written even when empty: its presence can mean something, e.g. `publish: {}`). */
  forkField(field: number): void {
    this.tag(field, WIRE_LEN);
    this.fork();
  }

  /** Closes the part fork() opened: writes its length in front of it. */
  join(): void {
    const at = this.starts.pop()!;
    const body = at + 1;
    const n = this.len - body;
    const size = varintSize(n);
    if (size > 1) {
      this.reserve(size - 1);
      this.buf.copyWithin(body + size - 1, body, this.len);
      this.len += size - 1;
    }
    let v = n;
    let i = at;
    while (v >= 0x80) {
      this.buf[i++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[i] = v;
  }

  /** The bytes written (a view of the buffer). */
  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}
