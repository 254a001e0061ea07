import { ErrorCode } from './codes.js';
import { depthMessage, jsonTextDepth } from './json-depth.js';

/**
 * Decoding side of the Centrifugo client protocol's JSON codec: frames hold one or more JSON objects separated by
 * '\n'. Parsing never throws past this module. commands.ts types each command's params; replies.ts encodes what the
 * server sends, embedding payloads (`data`, `info`) as JSON text serialized exactly once.
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
