import { isUtf8 } from 'node:buffer';
import { COMMAND_METHODS, type CommandMethod, type DecodedCommand } from '../codec.js';
import { ErrorCode } from '../codes.js';
import { depthMessage, jsonTextDepth } from '../json-depth.js';
import { ProtobufError, Reader, WIRE_LEN, WIRE_VARINT } from './wire.js';

/**
 * Decoding side of the protobuf encoding: a binary frame holds Commands, each prefixed with its length as a varint
 * (client.proto at centrifugal/protocol a578daf7f6d99b6e968893a61f26cd9cfc2b4bf4). Each command becomes the same
 * DecodedCommand the JSON codec gives (params keyed by their JSON names), so commands.ts types and checks them and
 * the session handles them alike in both encodings.
 *
 * `bytes` payloads (data) must be JSON text: Herald carries every payload as JSON so that JSON and protobuf clients
 * can share a channel (docs/protocol.md, "Mixed channels"). Other bytes are a bad request (107) for that command.
 * A frame that is not valid protobuf (a truncated or over-long varint, a length past the frame, a group, a command
 * without a method) is refused whole: the connection is closed with 3501.
 */

type RequestKind =
  | 'string'
  | 'bool'
  | 'uint'
  | 'int'
  | 'json'
  | { message: RequestSchema }
  | { map: RequestSchema | 'string' }
  | { repeated: RequestSchema | 'string' };
type RequestSchema = { readonly [field: number]: readonly [jsonName: string, kind: RequestKind] };

/** client.proto FilterNode (a tags filter): recursive through `nodes`. */
const FILTER_NODE: { [field: number]: readonly [jsonName: string, kind: RequestKind] } = {
  1: ['op', 'string'],
  2: ['key', 'string'],
  3: ['cmp', 'string'],
  4: ['val', 'string'],
  5: ['vals', { repeated: 'string' }],
};
FILTER_NODE[6] = ['nodes', { repeated: FILTER_NODE }];

const SUBSCRIBE_REQUEST: RequestSchema = {
  1: ['channel', 'string'],
  2: ['token', 'string'],
  3: ['recover', 'bool'],
  6: ['epoch', 'string'],
  7: ['offset', 'uint'],
  8: ['data', 'json'],
  9: ['positioned', 'bool'],
  10: ['recoverable', 'bool'],
  11: ['join_leave', 'bool'],
  12: ['delta', 'string'],
  13: ['tf', { message: FILTER_NODE }],
  14: ['flag', 'int'],
  15: ['type', 'int'],
  16: ['phase', 'int'],
  17: ['cursor', 'string'],
  18: ['limit', 'int'],
  19: ['asc', 'bool'],
};

const CHANNEL: RequestSchema = { 1: ['channel', 'string'] };

/** Field numbers 4 to 15 of Command, in client.proto's order. */
const REQUESTS: readonly (readonly [CommandMethod, RequestSchema])[] = [
  [
    'connect',
    {
      1: ['token', 'string'],
      2: ['data', 'json'],
      3: ['subs', { map: SUBSCRIBE_REQUEST }],
      4: ['name', 'string'],
      5: ['version', 'string'],
      6: ['headers', { map: 'string' }],
    },
  ],
  ['subscribe', SUBSCRIBE_REQUEST],
  ['unsubscribe', CHANNEL],
  [
    'publish',
    { 1: ['channel', 'string'], 2: ['data', 'json'], 3: ['type', 'int'], 4: ['key', 'string'], 5: ['removed', 'bool'] },
  ],
  ['presence', CHANNEL],
  ['presence_stats', CHANNEL],
  [
    'history',
    {
      1: ['channel', 'string'],
      7: ['limit', 'int'],
      8: ['since', { message: { 1: ['offset', 'uint'], 2: ['epoch', 'string'] } }],
      9: ['reverse', 'bool'],
    },
  ],
  ['ping', {}],
  ['send', { 1: ['data', 'json'] }],
  ['rpc', { 1: ['data', 'json'], 2: ['method', 'string'] }],
  ['refresh', { 1: ['token', 'string'] }],
  [
    'sub_refresh',
    {
      1: ['channel', 'string'],
      2: ['token', 'string'],
      3: ['type', 'int'],
      4: [
        'track',
        {
          repeated: {
            1: ['signature', 'string'],
            2: ['items', { repeated: { 1: ['key', 'string'], 2: ['version', 'uint'] } }],
          },
        },
      ],
      5: ['untrack', { repeated: 'string' }],
    },
  ],
];
if (REQUESTS.length !== COMMAND_METHODS.length) throw new Error('protobuf: a command method has no request schema');

/** The UTF-8 text of buf[start, end), or undefined when those bytes are not UTF-8. */
function utf8(buf: Uint8Array, start: number, end: number): string | undefined {
  const bytes = Buffer.from(buf.buffer, buf.byteOffset + start, end - start);
  return isUtf8(bytes) ? bytes.toString('utf8') : undefined;
}

function text(buf: Uint8Array, start: number, end: number): string {
  const s = utf8(buf, start, end);
  if (s === undefined) throw new ProtobufError('a string field is not UTF-8');
  return s;
}

/** A payload that is not JSON: the command is answered 107, the connection stays. */
class NotJson extends Error {}

interface DecodeOptions {
  maxDepth: number | undefined;
}

function decodeMessage(r: Reader, end: number, schema: RequestSchema, o: DecodeOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const sub = new Reader(r.buf, r.pos, end);
  while (!sub.done) {
    const tag = sub.varint();
    const no = Math.floor(tag / 8);
    const wire = tag % 8;
    if (no === 0) throw new ProtobufError('field number 0');
    const field = Object.hasOwn(schema, no) ? schema[no] : undefined;
    if (field === undefined) {
      sub.skip(wire);
      continue;
    }
    const [name, kind] = field;
    const scalar = kind === 'bool' || kind === 'uint' || kind === 'int';
    if (wire !== (scalar ? WIRE_VARINT : WIRE_LEN)) throw new ProtobufError(`field ${no} has the wrong wire type`);
    if (kind === 'bool') out[name] = sub.varint() !== 0;
    else if (kind === 'uint') out[name] = sub.varint();
    else if (kind === 'int') out[name] = sub.signedVarint();
    else {
      const [start, stop] = sub.lengthDelimited();
      if (kind === 'string') out[name] = text(sub.buf, start, stop);
      else if (kind === 'json') {
        if (stop > start) out[name] = json(sub.buf, start, stop, name, o);
      } else if ('message' in kind) {
        out[name] = decodeMessage(new Reader(sub.buf, start, stop), stop, kind.message, o);
      } else if ('repeated' in kind) {
        const list = (out[name] ??= []) as unknown[];
        list.push(
          kind.repeated === 'string'
            ? text(sub.buf, start, stop)
            : decodeMessage(new Reader(sub.buf, start, stop), stop, kind.repeated, o),
        );
      } else {
        const entry = new Reader(sub.buf, start, stop);
        let key = '';
        let value: unknown = kind.map === 'string' ? '' : {};
        while (!entry.done) {
          const t = entry.varint();
          if (t === 10) key = text(entry.buf, ...entry.lengthDelimited());
          else if (t === 18) {
            const [vs, ve] = entry.lengthDelimited();
            value =
              kind.map === 'string'
                ? text(entry.buf, vs, ve)
                : decodeMessage(new Reader(entry.buf, vs, ve), ve, kind.map, o);
          } else entry.skip(t % 8);
        }
        const map = (out[name] ??= {}) as Record<string, unknown>;
        Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
      }
    }
  }
  return out;
}

function json(buf: Uint8Array, start: number, end: number, name: string, o: DecodeOptions): unknown {
  const s = utf8(buf, start, end);
  if (s === undefined)
    throw new NotJson(`bad request: ${name} must be JSON (UTF-8 JSON text): Herald carries payloads as JSON`);
  if (o.maxDepth !== undefined && jsonTextDepth(s, o.maxDepth) > o.maxDepth)
    throw new NotJson(depthMessage(o.maxDepth));
  try {
    return JSON.parse(s);
  } catch {
    throw new NotJson(`bad request: ${name} must be JSON (UTF-8 JSON text): Herald carries payloads as JSON`);
  }
}

function decodeCommand(r: Reader, end: number, o: DecodeOptions): DecodedCommand {
  const c = new Reader(r.buf, r.pos, end);
  let id = 0;
  let method: CommandMethod | undefined;
  let methods = 0;
  let params: [number, number] | undefined;
  let schema: RequestSchema = {};
  while (!c.done) {
    const tag = c.varint();
    const no = Math.floor(tag / 8);
    const wire = tag % 8;
    if (no === 0) throw new ProtobufError('field number 0');
    if (no === 1) {
      if (wire !== WIRE_VARINT) throw new ProtobufError('id has the wrong wire type');
      const v = c.varint();
      if (v > 0xffffffff) throw new ProtobufError('id is not a 32-bit integer');
      id = v;
      continue;
    }
    const request = no >= 4 && no <= 15 ? REQUESTS[no - 4] : undefined;
    if (request === undefined) {
      c.skip(wire);
      continue;
    }
    if (wire !== WIRE_LEN) throw new ProtobufError(`field ${no} has the wrong wire type`);
    const bounds = c.lengthDelimited();
    if (method !== request[0]) methods++;
    [method, schema] = request;
    params = bounds;
  }
  if (method === undefined || params === undefined) {
    if (id === 0) return { kind: 'pong' };
    throw new ProtobufError('command has no method');
  }
  if (methods > 1)
    return { kind: 'invalid', id, code: ErrorCode.badRequest, message: 'bad request: one method per command' };
  try {
    return {
      kind: 'command',
      id,
      method,
      params: decodeMessage(new Reader(c.buf, params[0], params[1]), params[1], schema, o),
    };
  } catch (err) {
    if (err instanceof NotJson) return { kind: 'invalid', id, code: ErrorCode.badRequest, message: err.message };
    throw err;
  }
}

/**
 * `POST /emulation` in protobuf: an EmulationRequest { node = 1, session = 2, data = 3 } whose data are the
 * commands' frame (length-delimited Commands). Undefined when the body is not one.
 */
export function decodeEmulationRequest(
  buf: Uint8Array,
): { node: string; session: string; data: Uint8Array } | undefined {
  const r = new Reader(buf);
  const out: { node: string; session: string; data: Uint8Array } = { node: '', session: '', data: new Uint8Array(0) };
  try {
    while (!r.done) {
      const tag = r.varint();
      const no = Math.floor(tag / 8);
      if (no >= 1 && no <= 3) {
        if (tag % 8 !== WIRE_LEN) return undefined;
        const [start, end] = r.lengthDelimited();
        if (no === 3) out.data = buf.subarray(start, end);
        else out[no === 1 ? 'node' : 'session'] = text(buf, start, end);
      } else r.skip(tag % 8);
    }
  } catch (err) {
    if (err instanceof ProtobufError) return undefined;
    throw err;
  }
  return out;
}

export type ProtobufFrame = { ok: true; commands: DecodedCommand[] } | { ok: false; message: string };

/**
 * Decodes one binary frame into commands, in order; `ok: false` (with what is wrong) when any part of it is not a
 * well-formed protobuf Command. `maxDepth` bounds the nesting of the JSON payloads (HERALD_MAX_JSON_DEPTH).
 */
export function decodeProtobufFrame(buf: Uint8Array, maxDepth?: number): ProtobufFrame {
  const r = new Reader(buf);
  const commands: DecodedCommand[] = [];
  const o: DecodeOptions = { maxDepth };
  try {
    while (!r.done) {
      const [start, end] = r.lengthDelimited();
      r.pos = start;
      commands.push(decodeCommand(r, end, o));
      r.pos = end;
    }
  } catch (err) {
    if (err instanceof ProtobufError) return { ok: false, message: `bad request: ${err.message}` };
    throw err;
  }
  return { ok: true, commands };
}
