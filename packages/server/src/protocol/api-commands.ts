import type { ApiLimits } from '../core.js';
import { channelNameProblem, MAX_CHANNEL_LENGTH } from '../channels/name.js';
import type { StreamPosition } from '../engine/types.js';
import { ErrorCode, HeraldError } from './codes.js';
import { jsonDepthProblem } from './json-depth.js';

/**
 * Typed server API commands (HTTP /api/<method>, the in-process API, the outbox; Centrifugo's shapes): parseApiCommand
 * turns a method's parsed JSON body into its typed params, or throws the bad request (107, HTTP 400) the caller gets.
 * Fields are checked in the order the answer names the first wrong one. `data` stays as parsed (the node serializes
 * it once, after its depth check here).
 */

export const API_METHODS = [
  'publish',
  'broadcast',
  'subscribe',
  'unsubscribe',
  'disconnect',
  'refresh',
  'presence',
  'presence_stats',
  'history',
  'history_remove',
  'channels',
  'info',
  'batch',
  'map_publish',
  'map_remove',
] as const;
export type ApiMethod = (typeof API_METHODS)[number];
const methodSet = new Set<string>(API_METHODS);

export function isApiMethod(m: string): m is ApiMethod {
  return methodSet.has(m);
}

/**
 * A `*` pattern longer than this, once runs of `*` are merged, cannot match any channel name (at most
 * MAX_CHANNEL_LENGTH characters, so at most that many literal characters and one more `*` than that).
 */
export const MAX_CHANNEL_PATTERN_LENGTH = 2 * MAX_CHANNEL_LENGTH + 1;

export interface ApiPublishParams {
  channel: string;
  data: unknown;
  tags: Record<string, string> | undefined;
  idempotencyKey: string | undefined;
}

export interface ApiBroadcastParams {
  /** Each channel, or why its name is refused (that channel's response is the error; the others are published). */
  channels: (string | HeraldError)[];
  data: unknown;
  tags: Record<string, string> | undefined;
  idempotencyKey: string | undefined;
}

export interface ApiUserChannelParams {
  user: string;
  channel: string;
  client: string | undefined;
}

export interface ApiDisconnectParams {
  user: string;
  code: number | undefined;
  reason: string | undefined;
  client: string | undefined;
}

export interface ApiChannelParams {
  channel: string;
}

export interface ApiHistoryParams {
  channel: string;
  limit: number;
  since: StreamPosition | undefined;
  reverse: boolean;
}

export interface ApiChannelsParams {
  /** Runs of `*` merged into one (mergeStars). */
  pattern: string | undefined;
}

export interface ApiMapPublishParams {
  channel: string;
  key: string;
  data: unknown;
  tags: Record<string, string> | undefined;
  idempotencyKey: string | undefined;
}

export interface ApiMapRemoveParams {
  channel: string;
  key: string;
  idempotencyKey: string | undefined;
}

export interface ApiBatchParams {
  /** Each is parsed when its turn comes (parseBatchItem, then parseApiCommand). */
  commands: unknown[];
  parallel: boolean;
}

export interface ApiParams {
  publish: ApiPublishParams;
  broadcast: ApiBroadcastParams;
  subscribe: ApiUserChannelParams;
  unsubscribe: ApiUserChannelParams;
  disconnect: ApiDisconnectParams;
  refresh: Record<string, never>;
  presence: ApiChannelParams;
  presence_stats: ApiChannelParams;
  history: ApiHistoryParams;
  history_remove: ApiChannelParams;
  channels: ApiChannelsParams;
  info: Record<string, never>;
  batch: ApiBatchParams;
  map_publish: ApiMapPublishParams;
  map_remove: ApiMapRemoveParams;
}

export type ApiCommand = { [M in ApiMethod]: { method: M; params: ApiParams[M] } }[ApiMethod];

/** The limits a command's parse checks. */
export type ApiParseLimits = Pick<ApiLimits, 'maxJsonDepth' | 'maxBatchCommands' | 'maxBroadcastChannels'>;

function bad(message: string): HeraldError {
  return new HeraldError(ErrorCode.badRequest, `bad request: ${message}`);
}

function obj(params: unknown): Record<string, unknown> {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw bad('body must be a JSON object');
  return params as Record<string, unknown>;
}

function reqString(p: Record<string, unknown>, key: string): string {
  const v = p[key];
  if (typeof v !== 'string' || v === '') throw bad(`"${key}" must be a non-empty string`);
  return v;
}

function optString(p: Record<string, unknown>, key: string): string | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw bad(`"${key}" must be a string`);
  return v;
}

function channelOf(c: unknown): string {
  const problem = channelNameProblem(c);
  if (problem) throw bad(`invalid channel: ${problem}`);
  return c as string;
}

function tagsOf(p: Record<string, unknown>): Record<string, string> | undefined {
  const t = p.tags;
  if (t === undefined || t === null) return undefined;
  if (typeof t !== 'object' || Array.isArray(t)) throw bad('"tags" must be an object of strings');
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(t as Record<string, unknown>)) {
    if (typeof v !== 'string') throw bad(`tag "${k}" must be a string`);
    out[k] = v;
  }
  return { ...out };
}

function dataOf(p: Record<string, unknown>, limits: ApiParseLimits): unknown {
  if (!Object.hasOwn(p, 'data')) throw bad('"data" is required');
  const problem = jsonDepthProblem(p.data, limits.maxJsonDepth);
  if (problem) throw new HeraldError(ErrorCode.badRequest, problem);
  return p.data;
}

/** A non-negative safe integer: offsets are stream positions, and anything else is a caller's bug (400). */
function offsetOf(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`"${name}" must be a non-negative integer`);
  return v;
}

/** Merges each run of `*` into one (same matches); linear. */
export function mergeStars(pattern: string): string {
  const parts: string[] = [];
  let prevStar = false;
  for (const ch of pattern) {
    const star = ch === '*';
    if (!(star && prevStar)) parts.push(ch);
    prevStar = star;
  }
  return parts.join('');
}

type Parsers = { [M in ApiMethod]: (p: Record<string, unknown>, limits: ApiParseLimits) => ApiParams[M] };

const PARSERS: Parsers = {
  publish: (p, limits) => {
    const channel = channelOf(p.channel);
    const data = dataOf(p, limits);
    return { channel, data, tags: tagsOf(p), idempotencyKey: optString(p, 'idempotency_key') };
  },
  broadcast: (p, limits) => {
    const channels = p.channels;
    if (!Array.isArray(channels) || channels.length === 0) throw bad('"channels" must be a non-empty array');
    if (channels.length > limits.maxBroadcastChannels) {
      throw bad(
        `at most ${limits.maxBroadcastChannels} channels per broadcast (HERALD_API_MAX_BROADCAST); got ${channels.length}: split it`,
      );
    }
    const data = dataOf(p, limits);
    const tags = tagsOf(p);
    const idempotencyKey = optString(p, 'idempotency_key');
    return {
      channels: channels.map((c: unknown) => {
        try {
          return channelOf(c);
        } catch (err) {
          return err as HeraldError;
        }
      }),
      data,
      tags,
      idempotencyKey,
    };
  },
  subscribe: (p) => userChannel(p),
  unsubscribe: (p) => userChannel(p),
  disconnect: (p) => {
    const user = reqString(p, 'user');
    let code: number | undefined;
    let reason: string | undefined;
    const d = (p.disconnect ?? p) as Record<string, unknown>;
    if (d && typeof d === 'object') {
      if (d.code !== undefined) {
        if (typeof d.code !== 'number' || !Number.isInteger(d.code) || d.code < 3000 || d.code > 4999)
          throw bad('"code" must be an integer 3000-4999');
        code = d.code;
      }
      if (typeof d.reason === 'string') reason = d.reason;
    }
    return { user, code, reason, client: optString(p, 'client') };
  },
  refresh: () => ({}),
  presence: (p) => ({ channel: channelOf(p.channel) }),
  presence_stats: (p) => ({ channel: channelOf(p.channel) }),
  history: (p) => {
    const channel = channelOf(p.channel);
    const limit = p.limit === undefined ? 0 : p.limit;
    if (typeof limit !== 'number' || !Number.isInteger(limit)) throw bad('"limit" must be an integer');
    let since: StreamPosition | undefined;
    if (p.since !== undefined && p.since !== null) {
      const s = obj(p.since);
      if (s.epoch !== undefined && s.epoch !== null && typeof s.epoch !== 'string')
        throw bad('"since.epoch" must be a string');
      since = { offset: offsetOf(s.offset, 'since.offset'), epoch: typeof s.epoch === 'string' ? s.epoch : '' };
    }
    return { channel, limit, since, reverse: p.reverse === true };
  },
  history_remove: (p) => ({ channel: channelOf(p.channel) }),
  channels: (p) => {
    const raw = optString(p, 'pattern');
    const pattern = raw === undefined ? undefined : mergeStars(raw);
    if (pattern !== undefined && pattern.length > MAX_CHANNEL_PATTERN_LENGTH) {
      throw bad(
        `"pattern" is longer than ${MAX_CHANNEL_PATTERN_LENGTH} characters (runs of "*" counted as one): no channel name (at most ${MAX_CHANNEL_LENGTH} characters) can match it`,
      );
    }
    return { pattern };
  },
  info: () => ({}),
  map_publish: (p, limits) => {
    const channel = channelOf(p.channel);
    const key = reqString(p, 'key');
    const data = dataOf(p, limits);
    return { channel, key, data, tags: tagsOf(p), idempotencyKey: optString(p, 'idempotency_key') };
  },
  map_remove: (p) => ({
    channel: channelOf(p.channel),
    key: reqString(p, 'key'),
    idempotencyKey: optString(p, 'idempotency_key'),
  }),
  batch: (p, limits) => {
    const commands = p.commands;
    if (!Array.isArray(commands)) throw bad('"commands" must be an array');
    if (commands.length > limits.maxBatchCommands) {
      throw bad(
        `at most ${limits.maxBatchCommands} commands per batch (HERALD_API_MAX_BATCH); got ${commands.length}: split it`,
      );
    }
    return { commands, parallel: p.parallel === true };
  },
};

function userChannel(p: Record<string, unknown>): ApiUserChannelParams {
  const user = reqString(p, 'user');
  const channel = channelOf(p.channel);
  return { user, channel, client: optString(p, 'client') };
}

/** The typed API command, or throws HeraldError 107 (`bad request: …`, HTTP 400), or 104 for an unknown method. */
export function parseApiCommand(method: string, params: unknown, limits: ApiParseLimits): ApiCommand {
  const p = obj(params);
  if (!isApiMethod(method))
    throw new HeraldError(ErrorCode.methodNotFound, `method not found: "${method.slice(0, 40)}"`);
  return { method, params: PARSERS[method](p, limits) } as ApiCommand;
}

/** One command of a batch, `{"<method>": {...}}` with any method but batch; its params are parsed when it runs. */
export function parseBatchItem(item: unknown): { method: Exclude<ApiMethod, 'batch'>; params: unknown } {
  const cmd = obj(item);
  const keys = Object.keys(cmd);
  const method = keys[0];
  if (keys.length !== 1 || method === 'batch' || !isApiMethod(method!))
    throw bad('each command is {"<method>": {...}}');
  return { method: method as Exclude<ApiMethod, 'batch'>, params: cmd[method] };
}
