import { protobufReply } from '../protocol/protobuf/replies.js';
import type { SharedFrame } from './connection.js';

/**
 * A shared frame's protobuf Reply, built by the first protobuf transport that writes it and kept on the frame:
 * straight from the publication for the hub's pushes, transcoded from the JSON text otherwise. Throws only on a bug
 * (Herald's own JSON text that is not its schema's).
 */
export function sharedProtobufReply(frame: SharedFrame): Buffer {
  return (frame.protobufReply ??= frame.protobuf ? frame.protobuf() : protobufReply(frame.text, frame.fossil));
}

/**
 * Server-to-client WebSocket frames (RFC 6455 section 5.2: FIN, opcode 1 for text, 2 for binary, no mask). Built
 * once per shared message so that a broadcast costs one socket write per subscriber and no per-subscriber framing.
 */
export function encodeTextFrame(text: string): Buffer {
  // Encoded straight into the frame's buffer: no intermediate Buffer of the payload to copy.
  const len = Buffer.byteLength(text);
  const headerLen = frameHeaderLength(len);
  const frame = Buffer.allocUnsafe(headerLen + len);
  writeFrameHeader(frame, 0x81, len, headerLen);
  frame.write(text, headerLen);
  return frame;
}

/** A binary frame (the protobuf encoding). */
export function encodeBinaryFrame(payload: Buffer): Buffer {
  return encodeFrame(payload, 0x82);
}

function frameHeaderLength(len: number): number {
  if (len > 0xffff) return 10;
  return len > 125 ? 4 : 2;
}

function encodeFrame(payload: Buffer, first: number): Buffer {
  const len = payload.length;
  const headerLen = frameHeaderLength(len);
  const frame = Buffer.allocUnsafe(headerLen + len);
  writeFrameHeader(frame, first, len, headerLen);
  payload.copy(frame, headerLen);
  return frame;
}

function writeFrameHeader(frame: Buffer, first: number, len: number, headerLen: number): void {
  frame[0] = first;
  if (headerLen === 2) {
    frame[1] = len;
  } else if (headerLen === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(len / 0x100000000), 2);
    frame.writeUInt32BE(len >>> 0, 6);
  }
}
