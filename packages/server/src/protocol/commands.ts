import type { StreamPosition } from '../engine/types.js';
import { channelNameProblem } from '../channels/name.js';
import type { CommandMethod } from './codec.js';
import { ErrorCode, HeraldError } from './codes.js';
import { paramsProblem } from './params.js';

/**
 * Typed client commands: parseCommand turns a decoded command's params (codec.ts) into the typed params of its
 * method, or throws the bad request (107) the client is answered. Field types are checked first (params.ts, against
 * client.proto); then each method's own requirements that come before anything else its handler does.
 *
 * A few problems are found later by the handler, after checks that come first (the channel's name and namespace,
 * the connection's state, hooks): those fields keep the value that tells (`token: null`, `delta: 'unknown'`, `data`
 * undefined) and the handler throws the error from here at its place, so the first error a client meets is
 * unchanged. `data` fields stay as parsed (the hooks get them as JSON values); they are serialized once, where used.
 */

export interface ConnectSubRequest {
  recover: boolean;
  offset: number;
  epoch: string;
}

export interface ConnectParams {
  /** '' when absent; null when sent as null (refused with tokenNotString once the connection's state is checked). */
  token: string | null;
  data: unknown;
  /** The recovery position the client holds for each server-side subscription. */
  subs: ReadonlyMap<string, ConnectSubRequest>;
  name: string | undefined;
  version: string | undefined;
  headers: Record<string, string> | undefined;
}

export interface SubscribeParams {
  /** Undefined when absent; its name is checked with its namespace (resolveChannel). */
  channel: string | undefined;
  /** '' when absent; null when sent as null (refused with tokenNotString after the channel checks). */
  token: string | null;
  /** The subscription type as sent; anything but absent or 0 (stream) is not available (108). */
  type: number | null | undefined;
  recover: boolean;
  offset: number;
  epoch: string;
  joinLeave: boolean;
  recoverable: boolean;
  positioned: boolean;
  flag: number;
  /** 'unknown' for any delta type but fossil (refused with unknownDeltaType after the subscribe hook). */
  delta: 'none' | 'fossil' | 'unknown';
  data: unknown;
  /** Map subscriptions: the step asked for (2 state page, 1 stream page, 0 live). */
  phase: number;
  /** Map subscriptions: the state page after this cursor ('' for the first). */
  cursor: string;
  /** Map subscriptions: the page size asked for (0: the namespace's default). */
  limit: number;
  /** A tags filter (FilterNode, checked by tagsFilterOf when the channel allows filters). */
  tf: unknown;
}

export interface ChannelParams {
  channel: string | undefined;
}

export interface UnsubscribeParams {
  channel: string;
}

export interface PublishParams {
  channel: string | undefined;
  /** Undefined when absent (refused with publishWithoutData once the channel is resolved); JSON never holds undefined. */
  data: unknown;
  /** 1: a map publish (or remove, with `removed`) of `key`; 0 or absent: a stream publish. */
  type: number;
  key: string;
  removed: boolean;
}

export interface HistoryParams {
  channel: string | undefined;
  limit: number;
  since: StreamPosition | undefined;
  reverse: boolean;
}

export interface SendParams {
  data: unknown;
}

export interface RpcParams {
  method: string;
  data: unknown;
}

export interface RefreshParams {
  token: string;
}

/** A shared poll track batch: keys with the versions the client holds, and the backend's signature over the keys. */
export interface TrackBatchParams {
  signature: string;
  items: { key: string; version: number }[];
}

/**
 * `type` 0: refresh the subscription token; 1: track shared poll keys (`track`, and `untrack` first); 2: untrack.
 */
export type SubRefreshParams =
  | { type: 0; channel: string; token: string }
  | { type: 1 | 2; channel: string; track: TrackBatchParams[]; untrack: string[] };

/** Bytes of one shared poll key (UTF-8); a longer key is a bad request. */
export const MAX_TRACK_KEY_BYTES = 1024;

export interface CommandParams {
  connect: ConnectParams;
  subscribe: SubscribeParams;
  unsubscribe: UnsubscribeParams;
  publish: PublishParams;
  presence: ChannelParams;
  presence_stats: ChannelParams;
  history: HistoryParams;
  ping: Record<string, never>;
  send: SendParams;
  rpc: RpcParams;
  refresh: RefreshParams;
  sub_refresh: SubRefreshParams;
}

export type ClientCommand = { [M in CommandMethod]: { method: M; params: CommandParams[M] } }[CommandMethod];

function badRequest(message: string): HeraldError {
  return new HeraldError(ErrorCode.badRequest, `bad request: ${message}`);
}

/** connect or subscribe with `token: null`. */
export function tokenNotString(): HeraldError {
  return badRequest('token must be a string');
}

/** publish without `data`. */
export function publishWithoutData(): HeraldError {
  return badRequest('publish needs data');
}

/** subscribe with a `delta` other than "fossil". */
export function unknownDeltaType(): HeraldError {
  return badRequest('unknown delta type (only "fossil" exists)');
}

/** The value when it is a string (its type was checked: anything else is absent or null). */
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

function tokenOf(v: unknown): string | null {
  return v === null ? null : (str(v) ?? '');
}

function channelOf(p: Record<string, unknown>): string | undefined {
  return str(p.channel);
}

type Parsers = { [M in CommandMethod]: (p: Record<string, unknown>) => CommandParams[M] };

const PARSERS: Parsers = {
  connect: (p) => {
    const subs = new Map<string, ConnectSubRequest>();
    if (p.subs !== undefined && p.subs !== null) {
      for (const [channel, entry] of Object.entries(p.subs as Record<string, Record<string, unknown>>)) {
        subs.set(channel, {
          recover: entry.recover === true,
          offset: num(entry.offset) ?? 0,
          epoch: str(entry.epoch) ?? '',
        });
      }
    }
    return {
      token: tokenOf(p.token),
      data: p.data,
      subs,
      name: str(p.name),
      version: str(p.version),
      headers: p.headers !== undefined && p.headers !== null ? (p.headers as Record<string, string>) : undefined,
    };
  },
  subscribe: (p) => ({
    channel: channelOf(p),
    token: tokenOf(p.token),
    type: p.type === null ? null : num(p.type),
    recover: p.recover === true,
    offset: num(p.offset) ?? 0,
    epoch: str(p.epoch) ?? '',
    joinLeave: p.join_leave === true,
    recoverable: p.recoverable === true,
    positioned: p.positioned === true,
    flag: num(p.flag) ?? 0,
    delta: p.delta === undefined || p.delta === '' ? 'none' : p.delta === 'fossil' ? 'fossil' : 'unknown',
    data: p.data,
    phase: num(p.phase) ?? 0,
    cursor: str(p.cursor) ?? '',
    limit: num(p.limit) ?? 0,
    tf: p.tf ?? undefined,
  }),
  unsubscribe: (p) => {
    const channel = channelOf(p);
    if (channel === undefined) throw badRequest('channel must be a string');
    return { channel };
  },
  publish: (p) => ({
    channel: channelOf(p),
    data: p.data,
    type: num(p.type) ?? 0,
    key: str(p.key) ?? '',
    removed: p.removed === true,
  }),
  presence: (p) => ({ channel: channelOf(p) }),
  presence_stats: (p) => ({ channel: channelOf(p) }),
  history: (p) => {
    let since: StreamPosition | undefined;
    if (p.since !== undefined && p.since !== null) {
      const s = p.since as Record<string, unknown>;
      since = { offset: num(s.offset) ?? 0, epoch: str(s.epoch) ?? '' };
    }
    return { channel: channelOf(p), limit: num(p.limit) ?? 0, since, reverse: p.reverse === true };
  },
  ping: () => ({}),
  send: (p) => ({ data: p.data }),
  rpc: (p) => ({ method: str(p.method) ?? '', data: p.data }),
  refresh: (p) => {
    const token = str(p.token);
    if (!token) throw badRequest('refresh needs a token');
    return { token };
  },
  sub_refresh: (p) => {
    const channel = str(p.channel);
    if (!channel) throw badRequest('sub_refresh needs a channel');
    const nameProblem = channelNameProblem(channel);
    if (nameProblem) throw badRequest(nameProblem);
    const type = num(p.type) ?? 0;
    if (type === 0) {
      const token = str(p.token);
      if (!token) throw badRequest('sub_refresh needs channel and token');
      return { type: 0, channel, token };
    }
    if (type !== 1 && type !== 2) throw badRequest('sub_refresh.type must be 0 (refresh), 1 (track) or 2 (untrack)');
    return { type, channel, track: type === 1 ? trackBatches(p.track) : [], untrack: trackKeys(p.untrack, 'untrack') };
  },
};

function trackKey(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') throw badRequest(`${where} must be a non-empty string`);
  if (Buffer.byteLength(v, 'utf8') > MAX_TRACK_KEY_BYTES)
    throw badRequest(`${where} is longer than ${MAX_TRACK_KEY_BYTES} bytes`);
  return v;
}

function trackKeys(v: unknown, where: string): string[] {
  if (v === undefined || v === null) return [];
  return (v as unknown[]).map((k, i) => trackKey(k, `sub_refresh.${where}[${i}]`));
}

function trackBatches(v: unknown): TrackBatchParams[] {
  if (v === undefined || v === null) throw badRequest('sub_refresh type 1 (track) needs track batches');
  return (v as unknown[]).map((b, i) => {
    const where = `sub_refresh.track[${i}]`;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) throw badRequest(`${where} must be an object`);
    const batch = b as Record<string, unknown>;
    if (typeof batch.signature !== 'string' || batch.signature === '')
      throw badRequest(`${where}.signature must be the signature your backend gave for these keys`);
    if (!Array.isArray(batch.items) || batch.items.length === 0)
      throw badRequest(`${where}.items must be a non-empty array of {key, version}`);
    const items = batch.items.map((it: unknown, j: number) => {
      const at = `${where}.items[${j}]`;
      if (typeof it !== 'object' || it === null || Array.isArray(it)) throw badRequest(`${at} must be an object`);
      const item = it as Record<string, unknown>;
      const version = item.version ?? 0;
      if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0)
        throw badRequest(`${at}.version must be a non-negative integer`);
      return { key: trackKey(item.key, `${at}.key`), version };
    });
    return { signature: batch.signature, items };
  });
}

/**
 * The typed command, or throws HeraldError 107 with the message the client gets (`bad request: <what to fix>`).
 * Called once the connection may send the command (commands before connect are a protocol violation, 3501).
 */
export function parseCommand(method: CommandMethod, params: Record<string, unknown>): ClientCommand {
  const typeProblem = paramsProblem(method, params);
  if (typeProblem) throw new HeraldError(ErrorCode.badRequest, typeProblem);
  return { method, params: PARSERS[method](params) } as ClientCommand;
}
