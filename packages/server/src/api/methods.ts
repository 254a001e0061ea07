import type { ApiLimits, HeraldCore, PublishSource } from '../core.js';
import { channelNameProblem, MAX_CHANNEL_LENGTH } from '../channels/name.js';
import { Disconnect, ErrorCode, HeraldError } from '../protocol/codes.js';
import {
  EMPTY_RESULT,
  encodeApiError,
  encodeApiResult,
  encodeBatchReply,
  encodeBatchResult,
  encodeBroadcastResult,
  encodeChannelsResultWithin,
  encodeHistoryResult,
  encodeInfoResult,
  encodePresenceResultWithin,
  encodePresenceStatsResult,
  encodePublicationListWithin,
  encodePublishResult,
} from '../protocol/replies.js';
import { DEFAULT_MAX_JSON_DEPTH, jsonDepthProblem } from '../protocol/json-depth.js';

export type { ApiLimits } from '../core.js';

export const DEFAULT_API_LIMITS: Readonly<ApiLimits> = {
  maxJsonDepth: DEFAULT_MAX_JSON_DEPTH,
  maxReplyBytes: 16 * 1024 * 1024,
  maxBatchCommands: 1000,
  maxBroadcastChannels: 1000,
};

/**
 * A `*` pattern longer than this, once runs of `*` are merged, cannot match any channel name (at most
 * MAX_CHANNEL_LENGTH characters, so at most that many literal characters and one more `*` than that).
 */
export const MAX_CHANNEL_PATTERN_LENGTH = 2 * MAX_CHANNEL_LENGTH + 1;

/** Parallel batch commands run at most this many at a time, so the reply budget is checked between them. */
const BATCH_PARALLELISM = 16;

/** What is left of one answer's byte budget. */
interface Budget {
  left: number;
  max: number;
}

function overBudget(what: string, budget: Budget): HeraldError {
  return new HeraldError(
    ErrorCode.limitExceeded,
    `limit exceeded: ${what} more than the ${budget.max} bytes one API answer may take (HERALD_API_MAX_REPLY_SIZE)`,
  );
}

/**
 * The server API's methods (Centrifugo's shapes), shared by the HTTP API, the in-process API and the outbox.
 * Each takes the parsed JSON body and resolves with the JSON text of `result`, or throws HeraldError.
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
] as const;
export type ApiMethod = (typeof API_METHODS)[number];
const methodSet = new Set<string>(API_METHODS);

export function isApiMethod(m: string): m is ApiMethod {
  return methodSet.has(m);
}

/** A failed broadcast response or batch reply: the HeraldError's reply, or 100 for anything else. */
function errorOf(err: unknown): string {
  const e = err instanceof HeraldError ? err : new HeraldError(ErrorCode.internal);
  return encodeApiError(e.toReply());
}

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

function channelOf(p: Record<string, unknown>): string {
  const c = p.channel;
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

function dataOf(p: Record<string, unknown>, limits: ApiLimits): unknown {
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

/** Runs one API method; `source` labels its publications in /metrics. */
export async function executeApi(
  core: HeraldCore,
  method: string,
  params: unknown,
  source: PublishSource = 'api',
): Promise<string> {
  const limits = core.apiLimits ?? DEFAULT_API_LIMITS;
  const budget: Budget = { left: limits.maxReplyBytes, max: limits.maxReplyBytes };
  return run(core, limits, budget, method, params, source);
}

async function run(
  core: HeraldCore,
  limits: ApiLimits,
  budget: Budget,
  method: string,
  params: unknown,
  source: PublishSource,
): Promise<string> {
  const p = obj(params);
  switch (method) {
    case 'publish': {
      const channel = channelOf(p);
      dataOf(p, limits);
      const pos = await core.publish(channel, p.data, {
        tags: tagsOf(p),
        idempotencyKey: optString(p, 'idempotency_key'),
        source,
      });
      return encodePublishResult(pos);
    }
    case 'broadcast': {
      const channels = p.channels;
      if (!Array.isArray(channels) || channels.length === 0) throw bad('"channels" must be a non-empty array');
      if (channels.length > limits.maxBroadcastChannels) {
        throw bad(
          `at most ${limits.maxBroadcastChannels} channels per broadcast (HERALD_API_MAX_BROADCAST); got ${channels.length}: split it`,
        );
      }
      dataOf(p, limits);
      const tags = tagsOf(p);
      const key = optString(p, 'idempotency_key');
      const responses = await Promise.all(
        channels.map(async (c) => {
          try {
            const channel = channelOf({ channel: c });
            const pos = await core.publish(channel, p.data, { tags, idempotencyKey: key, source });
            return encodeApiResult(encodePublishResult(pos));
          } catch (err) {
            return errorOf(err);
          }
        }),
      );
      return encodeBroadcastResult(responses);
    }
    case 'subscribe': {
      await core.subscribeUser(reqString(p, 'user'), channelOf(p), optString(p, 'client'));
      return EMPTY_RESULT;
    }
    case 'unsubscribe': {
      await core.unsubscribeUser(reqString(p, 'user'), channelOf(p), optString(p, 'client'));
      return EMPTY_RESULT;
    }
    case 'disconnect': {
      const user = reqString(p, 'user');
      let code: number = Disconnect.forceNoReconnect.code;
      let reason: string = Disconnect.forceNoReconnect.reason;
      const d = (p.disconnect ?? p) as Record<string, unknown>;
      if (d && typeof d === 'object') {
        if (d.code !== undefined) {
          if (typeof d.code !== 'number' || !Number.isInteger(d.code) || d.code < 3000 || d.code > 4999)
            throw bad('"code" must be an integer 3000-4999');
          code = d.code;
        }
        if (typeof d.reason === 'string') reason = d.reason;
      }
      await core.disconnectUser(user, { client: optString(p, 'client'), code, reason });
      return EMPTY_RESULT;
    }
    case 'refresh':
      throw new HeraldError(ErrorCode.notAvailable, 'not available: refresh is driven by connection tokens');
    case 'presence': {
      const channel = channelOf(p);
      const entries = await core.presence(channel);
      const presence = encodePresenceResultWithin(entries, budget.left, 64);
      if (presence === undefined) throw overBudget(`the presence of "${channel}" (${entries.size} clients) is`, budget);
      budget.left -= presence.bytes;
      return presence.json;
    }
    case 'presence_stats': {
      const s = await core.presenceStats(channelOf(p));
      return encodePresenceStatsResult(s);
    }
    case 'history': {
      const channel = channelOf(p);
      const limit = p.limit === undefined ? 0 : p.limit;
      if (typeof limit !== 'number' || !Number.isInteger(limit)) throw bad('"limit" must be an integer');
      let since: { offset: number; epoch: string } | undefined;
      if (p.since !== undefined && p.since !== null) {
        const s = obj(p.since);
        if (s.epoch !== undefined && s.epoch !== null && typeof s.epoch !== 'string')
          throw bad('"since.epoch" must be a string');
        since = { offset: offsetOf(s.offset, 'since.offset'), epoch: typeof s.epoch === 'string' ? s.epoch : '' };
      }
      const r = await core.history(channel, { limit, since, reverse: p.reverse === true });
      const pubs = encodePublicationListWithin(r.publications, budget.left - 128);
      if (pubs === undefined) throw overBudget(`these ${r.publications.length} publications are`, budget);
      const out = encodeHistoryResult(pubs, r.position);
      budget.left -= Buffer.byteLength(out, 'utf8');
      return out;
    }
    case 'history_remove': {
      await core.removeHistory(channelOf(p));
      return EMPTY_RESULT;
    }
    case 'channels': {
      const raw = optString(p, 'pattern');
      const pattern = raw === undefined ? undefined : mergeStars(raw);
      if (pattern !== undefined && pattern.length > MAX_CHANNEL_PATTERN_LENGTH) {
        throw bad(
          `"pattern" is longer than ${MAX_CHANNEL_PATTERN_LENGTH} characters (runs of "*" counted as one): no channel name (at most ${MAX_CHANNEL_LENGTH} characters) can match it`,
        );
      }
      const matching: [string, number][] = [];
      for (const entry of await core.channels()) if (!pattern || globMatch(pattern, entry[0])) matching.push(entry);
      const channels = encodeChannelsResultWithin(matching, budget.left, 64);
      if (channels === undefined) throw overBudget('the matching channels are', budget);
      budget.left -= channels.bytes;
      return channels.json;
    }
    case 'info':
      return encodeInfoResult(core.nodes());
    case 'batch': {
      const commands = p.commands;
      if (!Array.isArray(commands)) throw bad('"commands" must be an array');
      if (commands.length > limits.maxBatchCommands) {
        throw bad(
          `at most ${limits.maxBatchCommands} commands per batch (HERALD_API_MAX_BATCH); got ${commands.length}: split it`,
        );
      }
      // One budget for all the replies. A command is not started once it is spent (its reply says so: nothing was
      // done); a read whose reply does not fit answers 106 in its place. Write replies are small and always kept, so
      // a publish that happened is never reported as failed.
      const one = async (c: unknown): Promise<string> => {
        try {
          const cmd = obj(c);
          const keys = Object.keys(cmd);
          if (keys.length !== 1 || keys[0] === 'batch' || !isApiMethod(keys[0]!))
            throw bad('each command is {"<method>": {...}}');
          if (budget.left <= 0) throw overBudget('not executed: the replies before it took', budget);
          const reply = encodeBatchReply(keys[0]!, await run(core, limits, budget, keys[0]!, cmd[keys[0]!], source));
          if (!READ_METHODS.has(keys[0]!)) budget.left -= Buffer.byteLength(reply, 'utf8');
          return reply;
        } catch (err) {
          return errorOf(err);
        }
      };
      const replies: string[] = new Array<string>(commands.length);
      if (p.parallel === true) {
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < commands.length) {
            const i = next++;
            replies[i] = await one(commands[i]);
          }
        };
        await Promise.all(Array.from({ length: Math.min(BATCH_PARALLELISM, commands.length) }, worker));
      } else for (let i = 0; i < commands.length; i++) replies[i] = await one(commands[i]);
      return encodeBatchResult(replies);
    }
    default:
      throw new HeraldError(ErrorCode.methodNotFound, `method not found: "${method.slice(0, 40)}"`);
  }
}

/** Methods whose replies count against the budget inside their own encoding (they refuse with 106 past it). */
const READ_METHODS = new Set(['history', 'presence', 'channels']);

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

/**
 * `*` matches any run of characters; no regex built from input. The literal pieces between the stars are found
 * left to right, each at its first place after the one before (the leftmost match is always the best one for a
 * pattern that has only `*`), so no position of the text is tried twice per piece.
 */
export function globMatch(pattern: string, text: string): boolean {
  const pieces = pattern.split('*');
  if (pieces.length === 1) return pattern === text;
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  if (first.length + last.length > text.length || !text.startsWith(first) || !text.endsWith(last)) return false;
  let at = first.length;
  const end = text.length - last.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i]!;
    if (piece === '') continue;
    const found = text.indexOf(piece, at);
    if (found < 0 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}
