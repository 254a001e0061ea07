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

/** Growable byte buffer for one message; nested messages are encoded into their own Writer and copied in. */
export class Writer {
  private buf: Buffer;
  len = 0;

  constructor(capacity = 64) {
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
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.len++] = v;
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

  bytesField(field: number, bytes: Uint8Array, always = false): void {
    if (bytes.length === 0 && !always) return;
    this.tag(field, WIRE_LEN);
    this.varint(bytes.length);
    this.raw(bytes);
  }

  stringField(field: number, s: string): void {
    if (s.length === 0) return;
    const n = Buffer.byteLength(s, 'utf8');
    this.tag(field, WIRE_LEN);
    this.varint(n);
    this.reserve(n);
    this.buf.write(s, this.len, 'utf8');
    this.len += n;
  }

  /** A nested message, written even when empty (its presence can mean something, e.g. `publish: {}`). */
  messageField(field: number, w: Writer): void {
    this.tag(field, WIRE_LEN);
    this.varint(w.len);
    this.reserve(w.len);
    w.buf.copy(this.buf, this.len, 0, w.len);
    this.len += w.len;
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** The message's bytes (a view of the buffer). */
  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  /** The message prefixed with its length, as frames carry it. */
  finishDelimited(): Buffer {
    const out = new Writer(this.len + 5);
    out.varint(this.len);
    out.raw(this.finish());
    return out.finish();
  }
}
