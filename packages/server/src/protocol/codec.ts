import type { ClientInfo, Publication } from '../engine/types.js';
import { ErrorCode, type DisconnectInfo, type ReplyErrorInfo } from './codes.js';
import { fossilPublicationData } from './fossil-delta.js';
import { depthMessage, jsonTextDepth } from './json-depth.js';

/**
 * JSON codec of the Centrifugo client protocol: frames hold one or more JSON objects separated by '\n'.
 * Parsing never throws past this module; payloads (`data`, `info`) are kept as JSON text so they are
 * serialized exactly once and embedded raw into every frame that carries them.
 */

export const COMMAND_METHODS = [
  'connect',
  'subscribe',
  'unsubscribe',
  'publish',
  'presence',
  'presence_stats',
  'history',
  'ping',
  'send',
  'rpc',
  'refresh',
  'sub_refresh',
] as const;
export type CommandMethod = (typeof COMMAND_METHODS)[number];
const methodSet = new Set<string>(COMMAND_METHODS);

export type DecodedCommand =
  | { kind: 'command'; id: number; method: CommandMethod; params: Record<string, unknown> }
  | { kind: 'pong' }
  | { kind: 'invalid'; id: number; code: number; message: string };

/**
 * Decodes one frame into commands, in order. Invalid lines become `invalid` entries (error reply or disconnect).
 * `maxDepth` bounds the nesting of the data a command carries (HERALD_MAX_JSON_DEPTH): a deeper command is invalid
 * (107) before anything serializes it again.
 */
export function decodeFrame(text: string, maxDepth?: number): DecodedCommand[] {
  const out: DecodedCommand[] = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line.length === 0) continue;
    out.push(decodeCommand(line, maxDepth));
  }
  return out;
}

/** The command object and its params object wrap the data: `{"publish":{"data":<data>}}`. */
const COMMAND_ENVELOPE_DEPTH = 2;

export function decodeCommand(line: string, maxDepth?: number): DecodedCommand {
  // A linear scan of the raw text (V8 parses deep JSON fine; serializing it again is what overflows the stack).
  const tooDeep =
    maxDepth !== undefined &&
    jsonTextDepth(line, maxDepth + COMMAND_ENVELOPE_DEPTH) > maxDepth + COMMAND_ENVELOPE_DEPTH;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: 'invalid', id: 0, code: ErrorCode.badRequest, message: 'bad request: malformed JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      kind: 'invalid',
      id: 0,
      code: ErrorCode.badRequest,
      message: 'bad request: a command must be a JSON object',
    };
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 0) return { kind: 'pong' };
  let id = 0;
  if (Object.hasOwn(obj, 'id')) {
    const rawId = obj.id;
    if (typeof rawId !== 'number' || !Number.isInteger(rawId) || rawId < 0 || rawId > 0xffffffff) {
      return {
        kind: 'invalid',
        id: 0,
        code: ErrorCode.badRequest,
        message: 'bad request: id must be an unsigned 32-bit integer',
      };
    }
    id = rawId;
  }
  if (tooDeep && maxDepth !== undefined)
    return { kind: 'invalid', id, code: ErrorCode.badRequest, message: depthMessage(maxDepth) };
  let method: CommandMethod | undefined;
  for (const key of keys) {
    if (key === 'id') continue;
    if (!methodSet.has(key)) {
      return {
        kind: 'invalid',
        id,
        code: ErrorCode.methodNotFound,
        message: `method not found: "${key.slice(0, 32)}"`,
      };
    }
    if (method !== undefined)
      return { kind: 'invalid', id, code: ErrorCode.badRequest, message: 'bad request: one method per command' };
    method = key as CommandMethod;
  }
  if (method === undefined)
    return { kind: 'invalid', id, code: ErrorCode.badRequest, message: 'bad request: command has no method' };
  const params = obj[method];
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
    return { kind: 'invalid', id, code: ErrorCode.badRequest, message: `bad request: "${method}" must be an object` };
  }
  return { kind: 'command', id, method, params: (params ?? {}) as Record<string, unknown> };
}

/** JSON text of a value that arrived inside a parsed command (`data` fields). */
export function jsonText(value: unknown): string {
  return value === undefined ? 'null' : JSON.stringify(value);
}

export function encodeReply(id: number, method: string, result: string): string {
  return `{"id":${id},"${method}":${result}}`;
}

export function encodeError(id: number, error: ReplyErrorInfo): string {
  return id > 0 ? `{"id":${id},"error":${JSON.stringify(error)}}` : `{"error":${JSON.stringify(error)}}`;
}

export function encodeClientInfo(info: ClientInfo): string {
  let s = `{"user":${JSON.stringify(info.user)},"client":${JSON.stringify(info.client)}`;
  if (info.connInfo !== undefined) s += `,"conn_info":${info.connInfo}`;
  if (info.chanInfo !== undefined) s += `,"chan_info":${info.chanInfo}`;
  return s + '}';
}

/**
 * A Publication object as JSON text (used in pushes, subscribe replies and history). `fossil` replaces the payload
 * for a subscriber that negotiated delta compression (see fossilPublicationData).
 */
export function encodePublication(pub: Publication, fossil?: { data: string; delta: boolean }): string {
  let s = `{"data":${fossil ? fossil.data : pub.data}`;
  if (fossil?.delta) s += ',"delta":true';
  if (pub.offset > 0) s += `,"offset":${pub.offset}`;
  if (pub.info) s += `,"info":${encodeClientInfo(pub.info)}`;
  if (pub.tags && Object.keys(pub.tags).length > 0) s += `,"tags":${JSON.stringify(pub.tags)}`;
  return s + '}';
}

/**
 * A publication list (plain, or fossil-delta for a subscriber that negotiated it) built only while it stays within
 * `maxBytes` of UTF-8: undefined as soon as it would not fit, so an oversized reply is never built whole.
 */
export function encodePublicationListWithin(
  pubs: readonly Publication[],
  maxBytes: number,
  fossil = false,
): string | undefined {
  if (pubs.length === 0) return '[]';
  const parts: string[] = [];
  let bytes = 2;
  for (let i = 0; i < pubs.length; i++) {
    const p = pubs[i]!;
    const s = fossil
      ? encodePublication(p, fossilPublicationData(i > 0 ? pubs[i - 1]!.data : undefined, p.data))
      : encodePublication(p);
    bytes += Buffer.byteLength(s, 'utf8') + (i > 0 ? 1 : 0);
    if (bytes > maxBytes) return undefined;
    parts.push(s);
  }
  return '[' + parts.join(',') + ']';
}

/** `channelJson` is JSON.stringify(channel), computed once per channel by the hub. */
export function encodePubPush(
  channelJson: string,
  pub: Publication,
  fossil?: { data: string; delta: boolean },
): string {
  return `{"push":{"channel":${channelJson},"pub":${encodePublication(pub, fossil)}}}`;
}

export function encodeJoinPush(channelJson: string, info: ClientInfo): string {
  return `{"push":{"channel":${channelJson},"join":{"info":${encodeClientInfo(info)}}}}`;
}

export function encodeLeavePush(channelJson: string, info: ClientInfo): string {
  return `{"push":{"channel":${channelJson},"leave":{"info":${encodeClientInfo(info)}}}}`;
}

export function encodeUnsubscribePush(channel: string, code: number, reason: string): string {
  return `{"push":{"channel":${JSON.stringify(channel)},"unsubscribe":{"code":${code},"reason":${JSON.stringify(reason)}}}}`;
}

export function encodeSubscribePush(channel: string, body: string): string {
  return `{"push":{"channel":${JSON.stringify(channel)},"subscribe":${body}}}`;
}

export function encodeMessagePush(data: string): string {
  return `{"push":{"message":{"data":${data}}}}`;
}

export function encodeDisconnectPush(d: DisconnectInfo): string {
  return `{"push":{"disconnect":{"code":${d.code},"reason":${JSON.stringify(d.reason)}}}}`;
}

/** The server's ping; a client's `{}` is its pong. */
export const PING_FRAME = '{}';
