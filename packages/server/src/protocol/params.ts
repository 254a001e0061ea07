import type { CommandMethod } from './codec.js';

/**
 * Field types of each command's params, as the Centrifugo protocol defines them (client.proto). A field of the
 * wrong type is a bad request (107, counted towards 3509) instead of being silently read as its default: a client
 * that sends `recover: "yes"` or `offset: "1"` has a bug it should hear about, and a permissive reader is where
 * type confusion starts. Unknown fields are ignored (newer SDKs may send more); `null` counts as absent.
 */
type FieldType = 'string' | 'boolean' | 'uint' | 'int' | 'object' | 'array' | 'any';

const SUBSCRIBE_FIELDS: Record<string, FieldType> = {
  channel: 'string',
  token: 'string',
  recover: 'boolean',
  epoch: 'string',
  offset: 'uint',
  data: 'any',
  positioned: 'boolean',
  recoverable: 'boolean',
  join_leave: 'boolean',
  delta: 'string',
  flag: 'int',
  type: 'int',
  phase: 'int',
  cursor: 'string',
  limit: 'int',
  asc: 'boolean',
  tf: 'object',
};

const FIELDS: Record<CommandMethod, Record<string, FieldType>> = {
  connect: { token: 'string', data: 'any', subs: 'object', name: 'string', version: 'string', headers: 'object' },
  subscribe: SUBSCRIBE_FIELDS,
  unsubscribe: { channel: 'string' },
  publish: { channel: 'string', data: 'any', type: 'int', key: 'string', removed: 'boolean' },
  presence: { channel: 'string' },
  presence_stats: { channel: 'string' },
  history: { channel: 'string', limit: 'int', since: 'object', reverse: 'boolean' },
  ping: {},
  send: { data: 'any' },
  rpc: { method: 'string', data: 'any' },
  refresh: { token: 'string' },
  sub_refresh: { channel: 'string', token: 'string', type: 'int', track: 'array', untrack: 'array' },
};

/** Entries of connect's `subs` map: the recovery position of each server-side subscription. */
const CONNECT_SUB_FIELDS: Record<string, FieldType> = { recover: 'boolean', epoch: 'string', offset: 'uint' };
const SINCE_FIELDS: Record<string, FieldType> = { offset: 'uint', epoch: 'string' };

function fits(value: unknown, type: FieldType): boolean {
  switch (type) {
    case 'any':
      return true;
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'uint':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
    case 'int':
      return typeof value === 'number' && Number.isSafeInteger(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
  }
}

const TYPE_NAMES: Record<FieldType, string> = {
  string: 'a string',
  boolean: 'a boolean',
  uint: 'a non-negative integer',
  int: 'an integer',
  object: 'an object',
  array: 'an array',
  any: 'any JSON',
};

function problemIn(obj: Record<string, unknown>, fields: Record<string, FieldType>, where: string): string | undefined {
  for (const key of Object.keys(obj)) {
    if (!Object.hasOwn(fields, key)) continue;
    const value = obj[key];
    if (value === null || value === undefined) continue;
    const type = fields[key]!;
    if (!fits(value, type)) return `bad request: ${where}${key} must be ${TYPE_NAMES[type]}`;
  }
  return undefined;
}

/** Why the params of `method` have a field of the wrong type, or undefined when they are well-typed. */
export function paramsProblem(method: CommandMethod, params: Record<string, unknown>): string | undefined {
  const own = problemIn(params, FIELDS[method], `${method}.`);
  if (own) return own;
  if (method === 'connect' && params.subs !== undefined && params.subs !== null) {
    for (const [channel, sub] of Object.entries(params.subs as Record<string, unknown>)) {
      if (typeof sub !== 'object' || sub === null || Array.isArray(sub))
        return 'bad request: connect.subs entries must be objects';
      const p = problemIn(
        sub as Record<string, unknown>,
        CONNECT_SUB_FIELDS,
        `connect.subs[${JSON.stringify(channel.slice(0, 40))}].`,
      );
      if (p) return p;
    }
  }
  if (method === 'history' && params.since !== undefined && params.since !== null) {
    const p = problemIn(params.since as Record<string, unknown>, SINCE_FIELDS, 'history.since.');
    if (p) return p;
  }
  if (method === 'connect' && params.headers !== undefined && params.headers !== null) {
    for (const v of Object.values(params.headers as Record<string, unknown>)) {
      if (typeof v !== 'string') return 'bad request: connect.headers values must be strings';
    }
  }
  return undefined;
}
