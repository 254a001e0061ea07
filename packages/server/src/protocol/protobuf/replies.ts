import type { ClientInfo, Publication } from '../../engine/types.js';
import { REPLY, type FieldKind, type MessageSchema } from './schema.js';
import { Writer } from './wire.js';

/**
 * Replies and pushes in protobuf. Herald builds every message as JSON text (protocol/replies.ts, with payloads spliced
 * in as they were received); a protobuf connection gets the same message transcoded in one pass over that text,
 * driven by schema.ts: scalars are parsed, `bytes` fields (data, info) take the raw JSON text of their value as is,
 * never parsed. So both encodings carry the same message, field for field, and a payload's bytes are the JSON text
 * JSON subscribers see. The input is always Herald's own output: malformed text is a bug and throws.
 *
 * Why hand-written (bench/protobuf-encoding.mjs, docs/protocol.md "Encodings"; Node 20, shared 2-core machine, µs per
 * publication push with 132 B / 2 KB of data): protobufPubPush below 0.9-1.6 / 4.5-6.9, protobufjs 7 (reflection,
 * the SDK's library) 1.0-3.1 / 2.8-4.9, @bufbuild/protobuf 2's BinaryWriter 10.8-11.2 / 17-25; the transcoder
 * 3.4-5.4 / 11-17, used for replies (one per command) and join/leave pushes, never per subscriber. The hot path is
 * as fast as protobufjs without a dependency or generated code; end to end at fan-out protobuf costs no more server
 * CPU per delivery than JSON (bench/results/2026-12-07-protobuf.md).
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

interface Cursor {
  s: string;
  i: number;
}

function ws(c: Cursor): void {
  const s = c.s;
  let i = c.i;
  for (;;) {
    const ch = s.charCodeAt(i);
    if (ch === 0x20 || ch === 0x0a || ch === 0x0d || ch === 0x09) i++;
    else break;
  }
  c.i = i;
}

function expect(c: Cursor, ch: number): void {
  ws(c);
  if (c.s.charCodeAt(c.i) !== ch) throw new Error(`transcode: expected ${String.fromCharCode(ch)} at ${c.i}`);
  c.i++;
}

/** End (after the closing quote) of the string starting at c.i, and whether it holds escapes. */
function stringEnd(s: string, start: number): [end: number, escaped: boolean] {
  let escaped = false;
  for (let i = start + 1; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch === BACKSLASH) {
      escaped = true;
      i++;
    } else if (ch === QUOTE) return [i + 1, escaped];
  }
  throw new Error('transcode: unterminated string');
}

function readString(c: Cursor): string {
  ws(c);
  const start = c.i;
  if (c.s.charCodeAt(start) !== QUOTE) throw new Error(`transcode: expected a string at ${start}`);
  const [end, escaped] = stringEnd(c.s, start);
  c.i = end;
  return escaped ? (JSON.parse(c.s.slice(start, end)) as string) : c.s.slice(start + 1, end - 1);
}

/** Skips one JSON value (iteratively: any nesting); returns its raw text's bounds. */
function skipValue(c: Cursor): [start: number, end: number] {
  ws(c);
  const s = c.s;
  const start = c.i;
  let i = start;
  let depth = 0;
  for (;;) {
    const ch = s.charCodeAt(i);
    if (Number.isNaN(ch)) throw new Error('transcode: unexpected end');
    if (ch === QUOTE) {
      i = stringEnd(s, i)[0];
      if (depth === 0) break;
      continue;
    }
    if (ch === 0x7b || ch === 0x5b) depth++;
    else if (ch === 0x7d || ch === 0x5d) {
      if (depth === 0) break;
      depth--;
      if (depth === 0) {
        i++;
        break;
      }
    } else if (depth === 0 && (ch === 0x2c || ch === 0x20 || ch === 0x0a || ch === 0x0d || ch === 0x09)) break;
    i++;
  }
  c.i = i;
  return [start, i];
}

function readLiteral(c: Cursor): string {
  const [start, end] = skipValue(c);
  return c.s.slice(start, end);
}

/** Encodes the JSON object at the cursor as a message of `schema`. */
function message(c: Cursor, schema: MessageSchema, fossil: boolean, w: Writer): void {
  expect(c, 0x7b);
  ws(c);
  if (c.s.charCodeAt(c.i) === 0x7d) {
    c.i++;
    return;
  }
  for (;;) {
    const key = readString(c);
    expect(c, 0x3a);
    const field = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (field === undefined) skipValue(c);
    else if (field[1] === 'deltaFlag') {
      const v = readLiteral(c) === 'true';
      w.boolField(field[0], v);
      fossil = fossil || v;
    } else value(c, field[0], field[1], fossil, w);
    ws(c);
    const ch = c.s.charCodeAt(c.i++);
    if (ch === 0x7d) return;
    if (ch !== 0x2c) throw new Error(`transcode: expected , or } at ${c.i - 1}`);
  }
}

function value(c: Cursor, no: number, kind: FieldKind, fossil: boolean, w: Writer): void {
  ws(c);
  if (c.s.startsWith('null', c.i) && kind !== 'json' && kind !== 'pubData') {
    c.i += 4;
    return;
  }
  switch (kind) {
    case 'string':
      w.stringField(no, readString(c));
      return;
    case 'bool':
    case 'deltaFlag':
      w.boolField(no, readLiteral(c) === 'true');
      return;
    case 'uint':
      w.uintField(no, Number(readLiteral(c)));
      return;
    case 'int':
      w.intField(no, Number(readLiteral(c)));
      return;
    case 'json': {
      const [start, end] = skipValue(c);
      w.utf8Field(no, c.s.slice(start, end));
      return;
    }
    case 'pubData': {
      const [start, end] = skipValue(c);
      const raw = c.s.slice(start, end);
      // In a fossil-delta subscription the JSON payload or patch travels as a JSON string; protobuf sends its bytes.
      const text = fossil && raw.charCodeAt(0) === QUOTE ? (JSON.parse(raw) as string) : raw;
      w.utf8Field(no, text);
      return;
    }
  }
  if ('message' in kind) {
    w.forkField(no);
    message(c, kind.message, fossil, w);
    w.join();
  } else if ('repeated' in kind) {
    expect(c, 0x5b);
    ws(c);
    if (c.s.charCodeAt(c.i) === 0x5d) {
      c.i++;
      return;
    }
    for (;;) {
      w.forkField(no);
      message(c, kind.repeated, fossil, w);
      w.join();
      ws(c);
      const ch = c.s.charCodeAt(c.i++);
      if (ch === 0x5d) return;
      if (ch !== 0x2c) throw new Error(`transcode: expected , or ] at ${c.i - 1}`);
    }
  } else {
    expect(c, 0x7b);
    ws(c);
    if (c.s.charCodeAt(c.i) === 0x7d) {
      c.i++;
      return;
    }
    for (;;) {
      w.forkField(no);
      w.stringField(1, readString(c));
      expect(c, 0x3a);
      if (kind.map === 'string') w.stringField(2, readString(c));
      else {
        w.forkField(2);
        message(c, kind.map, false, w);
        w.join();
      }
      w.join();
      ws(c);
      const ch = c.s.charCodeAt(c.i++);
      if (ch === 0x7d) return;
      if (ch !== 0x2c) throw new Error(`transcode: expected , or } at ${c.i - 1}`);
    }
  }
}

/**
 * One Reply (a command's reply, a push, or the empty ping), length-delimited as frames carry it, from the JSON text
 * of the same message. `fossil`: the message is a publication push for a fossil-delta subscriber (its data is a
 * JSON string holding the payload or patch).
 */
export function protobufReply(json: string, fossil = false): Buffer {
  const w = new Writer(json.length + 16);
  w.fork();
  message({ s: json, i: 0 }, REPLY, fossil, w);
  w.join();
  return w.finish();
}

function clientInfo(w: Writer, field: number, info: ClientInfo): void {
  w.forkField(field);
  w.stringField(1, info.user);
  w.stringField(2, info.client);
  if (info.connInfo !== undefined) w.utf8Field(3, info.connInfo);
  if (info.chanInfo !== undefined) w.utf8Field(4, info.chanInfo);
  w.join();
}

/**
 * A publication push straight from the publication, for the hub's fan-out (the hot path): the same message as
 * protobufReply(encodePubPush(...)) without the JSON text. `fossil` is the raw payload or patch (not JSON-quoted)
 * for a fossil-delta subscriber.
 */
export function protobufPubPush(channel: string, pub: Publication, fossil?: { data: string; delta: boolean }): Buffer {
  const w = new Writer(pub.data.length + channel.length + 128);
  w.fork();
  w.forkField(4); // Reply.push
  w.stringField(2, channel);
  w.forkField(4); // Push.pub
  w.utf8Field(4, fossil ? fossil.data : pub.data);
  if (fossil?.delta) w.boolField(8, true);
  w.uintField(6, pub.offset);
  if (pub.key !== undefined) w.stringField(11, pub.key);
  if (pub.removed) w.boolField(12, true);
  if (pub.info) clientInfo(w, 5, pub.info);
  if (pub.tags) {
    for (const [k, v] of Object.entries(pub.tags)) {
      w.forkField(7);
      w.stringField(1, k);
      w.stringField(2, v);
      w.join();
    }
  }
  w.join();
  w.join();
  w.join();
  return w.finish();
}
