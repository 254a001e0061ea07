import type { ApiLimits, HeraldCore, PublishSource } from '../core.js';
import { parseApiCommand, parseBatchItem } from '../protocol/api-commands.js';
import { Disconnect, ErrorCode, HeraldError } from '../protocol/codes.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../protocol/json-depth.js';
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
  encodeMapUpdateResult,
  encodePublishResult,
} from '../protocol/replies.js';

export type { ApiLimits } from '../core.js';

export const DEFAULT_API_LIMITS: Readonly<ApiLimits> = {
  maxJsonDepth: DEFAULT_MAX_JSON_DEPTH,
  maxReplyBytes: 16 * 1024 * 1024,
  maxBatchCommands: 1000,
  maxBroadcastChannels: 1000,
};

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

/** A failed broadcast response or batch reply: the HeraldError's reply, or 100 for anything else. */
function errorOf(err: unknown): string {
  const e = err instanceof HeraldError ? err : new HeraldError(ErrorCode.internal);
  return encodeApiError(e.toReply());
}

/**
 * Runs one server API method (Centrifugo's shapes; the HTTP API, the in-process API and the outbox share it) on the
 * parsed JSON body: resolves with the JSON text of `result`, or throws HeraldError. protocol/api-commands.ts types
 * the body, protocol/replies.ts encodes the answer; `source` labels the method's publications in /metrics.
 */
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
  const c = parseApiCommand(method, params, limits);
  switch (c.method) {
    case 'publish': {
      const p = c.params;
      const pos = await core.publish(p.channel, p.data, { tags: p.tags, idempotencyKey: p.idempotencyKey, source });
      return encodePublishResult(pos);
    }
    case 'broadcast': {
      const p = c.params;
      const responses = await Promise.all(
        p.channels.map(async (channel) => {
          if (typeof channel !== 'string') return errorOf(channel);
          try {
            const pos = await core.publish(channel, p.data, { tags: p.tags, idempotencyKey: p.idempotencyKey, source });
            return encodeApiResult(encodePublishResult(pos));
          } catch (err) {
            return errorOf(err);
          }
        }),
      );
      return encodeBroadcastResult(responses);
    }
    case 'subscribe': {
      await core.subscribeUser(c.params.user, c.params.channel, c.params.client);
      return EMPTY_RESULT;
    }
    case 'unsubscribe': {
      await core.unsubscribeUser(c.params.user, c.params.channel, c.params.client);
      return EMPTY_RESULT;
    }
    case 'disconnect': {
      const p = c.params;
      await core.disconnectUser(p.user, {
        client: p.client,
        code: p.code ?? Disconnect.forceNoReconnect.code,
        reason: p.reason ?? Disconnect.forceNoReconnect.reason,
      });
      return EMPTY_RESULT;
    }
    case 'refresh':
      throw new HeraldError(ErrorCode.notAvailable, 'not available: refresh is driven by connection tokens');
    case 'presence': {
      const channel = c.params.channel;
      const entries = await core.presence(channel);
      const presence = encodePresenceResultWithin(entries, budget.left, 64);
      if (presence === undefined) throw overBudget(`the presence of "${channel}" (${entries.size} clients) is`, budget);
      budget.left -= presence.bytes;
      return presence.json;
    }
    case 'presence_stats':
      return encodePresenceStatsResult(await core.presenceStats(c.params.channel));
    case 'history': {
      const p = c.params;
      const r = await core.history(p.channel, { limit: p.limit, since: p.since, reverse: p.reverse });
      const pubs = encodePublicationListWithin(r.publications, budget.left - 128);
      if (pubs === undefined) throw overBudget(`these ${r.publications.length} publications are`, budget);
      const out = encodeHistoryResult(pubs, r.position);
      budget.left -= Buffer.byteLength(out, 'utf8');
      return out;
    }
    case 'history_remove': {
      await core.removeHistory(c.params.channel);
      return EMPTY_RESULT;
    }
    case 'channels': {
      const pattern = c.params.pattern;
      const matching: [string, number][] = [];
      for (const entry of await core.channels()) if (!pattern || globMatch(pattern, entry[0])) matching.push(entry);
      const channels = encodeChannelsResultWithin(matching, budget.left, 64);
      if (channels === undefined) throw overBudget('the matching channels are', budget);
      budget.left -= channels.bytes;
      return channels.json;
    }
    case 'info':
      return encodeInfoResult(core.nodes());
    case 'map_publish': {
      const p = c.params;
      return encodeMapUpdateResult(
        await core.mapPublish(p.channel, p.key, p.data, { tags: p.tags, idempotencyKey: p.idempotencyKey, source }),
      );
    }
    case 'map_remove': {
      const p = c.params;
      return encodeMapUpdateResult(await core.mapRemove(p.channel, p.key, { idempotencyKey: p.idempotencyKey }));
    }
    case 'batch': {
      const { commands, parallel } = c.params;
      // One budget for all the replies. A command is not started once it is spent (its reply says so: nothing was
      // done); a read whose reply does not fit answers 106 in its place. Write replies are small and always kept, so
      // a publish that happened is never reported as failed.
      const one = async (item: unknown): Promise<string> => {
        try {
          const cmd = parseBatchItem(item);
          if (budget.left <= 0) throw overBudget('not executed: the replies before it took', budget);
          const reply = encodeBatchReply(cmd.method, await run(core, limits, budget, cmd.method, cmd.params, source));
          if (!READ_METHODS.has(cmd.method)) budget.left -= Buffer.byteLength(reply, 'utf8');
          return reply;
        } catch (err) {
          return errorOf(err);
        }
      };
      const replies: string[] = new Array<string>(commands.length);
      if (parallel) {
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
  }
}

/** Methods whose replies count against the budget inside their own encoding (they refuse with 106 past it). */
const READ_METHODS = new Set(['history', 'presence', 'channels']);

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
