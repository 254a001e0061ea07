import { ErrorCode, HeraldError } from '../protocol/codes.js';

/**
 * What one outbox row asks for, split into the calls that each store one thing: a `publish` row is one item, a
 * `broadcast` row one publish per channel, a `batch` row one item per command (a broadcast command one per channel).
 * A row is settled only once every item is stored or has failed for good; a retry calls only the items still missing.
 *
 * Every publish item gets an idempotency key derived from the row unless it has its own, so that a retry after a
 * crash or a partial failure stores nothing twice: `herald-outbox-<id>` for a publish row (one item),
 * `herald-outbox-<id>-<index>` for the items of broadcast and batch rows (`<i>-<j>` for a broadcast inside a batch).
 */
export interface OutboxItem {
  /** "0", "1", … (or "2-1" for channel 1 of a broadcast that is command 2 of a batch). */
  index: string;
  method: string;
  params: unknown;
  /** For logs and dead-letter reasons: the channel or the method. */
  label: string;
  /** Items of a batch row without `parallel: true` run one after another, in order. */
  sequential: boolean;
  /** Set when the item can never be stored (a batch command that is not a command): it is not called. */
  error?: HeraldError;
}

/** The HTTP API's bounds, which rows keep too: HERALD_API_MAX_BATCH and HERALD_API_MAX_BROADCAST. */
export interface ItemLimits {
  maxBatchCommands: number;
  maxBroadcastChannels: number;
}

function bad(message: string): HeraldError {
  return new HeraldError(ErrorCode.badRequest, `bad request: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function withKey(params: Record<string, unknown>, key: string): Record<string, unknown> {
  return params.idempotency_key === undefined || params.idempotency_key === null || params.idempotency_key === ''
    ? { ...params, idempotency_key: key }
    : params;
}

function label(method: string, params: unknown): string {
  const ch = isObject(params) ? params.channel : undefined;
  return typeof ch === 'string' ? `${method} to ${JSON.stringify(ch.slice(0, 80))}` : method;
}

/** One publish per channel of a broadcast body; throws a permanent HeraldError when the body itself is wrong. */
function broadcastItems(
  body: unknown,
  keyBase: string,
  indexBase: string,
  sequential: boolean,
  limits: ItemLimits,
): OutboxItem[] {
  if (!isObject(body)) throw bad('body must be a JSON object');
  const { channels, ...rest } = body;
  if (!Array.isArray(channels) || channels.length === 0) throw bad('"channels" must be a non-empty array');
  if (channels.length > limits.maxBroadcastChannels)
    throw bad(`at most ${limits.maxBroadcastChannels} channels per broadcast (HERALD_API_MAX_BROADCAST)`);
  if (!Object.hasOwn(body, 'data')) throw bad('"data" is required');
  return channels.map((channel, i) => {
    const params = withKey({ ...rest, channel }, `${keyBase}-${i}`);
    return { index: `${indexBase}${i}`, method: 'publish', params, label: label('publish', params), sequential };
  });
}

/** Splits a parsed row into items; throws a permanent HeraldError when the row as a whole can never be published. */
export function itemsOf(rowId: string, method: string, payload: unknown, limits: ItemLimits): OutboxItem[] {
  const key = `herald-outbox-${rowId}`;
  if (method === 'publish') {
    const params = isObject(payload) ? withKey(payload, key) : payload;
    return [{ index: '0', method, params, label: label(method, params), sequential: true }];
  }
  if (method === 'broadcast') return broadcastItems(payload, key, '', false, limits);
  if (method === 'batch') {
    if (!isObject(payload)) throw bad('body must be a JSON object');
    const commands = payload.commands;
    if (!Array.isArray(commands)) throw bad('"commands" must be an array');
    if (commands.length > limits.maxBatchCommands)
      throw bad(`at most ${limits.maxBatchCommands} commands per batch (HERALD_API_MAX_BATCH)`);
    const sequential = payload.parallel !== true;
    const items: OutboxItem[] = [];
    for (const [i, c] of commands.entries()) {
      const keys = isObject(c) ? Object.keys(c) : [];
      const m = keys[0];
      if (!isObject(c) || keys.length !== 1 || m === undefined || m === 'batch') {
        // Not a command: an item that fails for good, so the rest of the batch still goes out.
        items.push({
          index: String(i),
          method: 'batch',
          params: c,
          label: `command ${i}`,
          sequential,
          error: bad('each command is {"<method>": {...}} and not "batch"'),
        });
        continue;
      }
      const params = c[m];
      if (m === 'broadcast') {
        try {
          items.push(...broadcastItems(params, `${key}-${i}`, `${i}-`, sequential, limits));
        } catch (err) {
          items.push({
            index: String(i),
            method: 'broadcast',
            params,
            label: `command ${i} (broadcast)`,
            sequential,
            error: err as HeraldError,
          });
        }
        continue;
      }
      const p = m === 'publish' && isObject(params) ? withKey(params, `${key}-${i}`) : params;
      items.push({ index: String(i), method: m, params: p, label: `command ${i} (${label(m, p)})`, sequential });
    }
    return items;
  }
  return [{ index: '0', method, params: payload, label: label(method, payload), sequential: true }];
}
