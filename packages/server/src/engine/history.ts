import type { Publication, StreamPosition } from './types.js';

/**
 * History: reads a channel's stream. Writing happens only through `Broker.publish` (append and fan-out are one
 * atomic step), so an implementation usually implements both roles over one store.
 *
 * Contract (memory/history.ts, redis/history.ts):
 * - `history` returns the stream's current top `position` and, unless `limit === 0`, publications in offset order
 *   (newest first when `reverse`), only those with offset > `since.offset` when `since` is given.
 *   `limit < 0` means no limit (bounded by the stream's size anyway).
 * - Reading a channel that has no stream creates nothing (no per-channel memory or key: subscribing alone must not
 *   cost storage). It answers offset 0 and the channel's *first epoch*, derived from the store's generation and the
 *   channel name, and the first publish creates the stream with exactly that epoch: a client that read the empty
 *   channel recovers every publication from offset 1. A bounded registry (one bit per channel hash) marks channels
 *   that had a stream; for those, reads answer an epoch no stream ever gets and a new stream gets a random one, so
 *   a position from a stream that ended (meta TTL, eviction) is never taken for one in the next stream. The store
 *   losing its data (process restart, Redis restarted empty) loses the generation too, and every first epoch
 *   changes: clients holding the old one are told `recovered: false`.
 * - Completeness test used by recovery: the publications returned after `since` are complete exactly when
 *   `since.epoch === position.epoch` and `publications.length === position.offset - since.offset` (no limit).
 * - Rejects with HeraldError 100 (temporary) when the store cannot answer.
 */
export interface History {
  history(channel: string, query: HistoryQuery): Promise<HistoryResult>;
  /** Drops the channel's publications; the epoch and top offset stay. */
  removeHistory(channel: string): Promise<void>;
  /**
   * Starts a new epoch if the channel's epoch is still `epoch`; offsets go on from the top. For a stream that went
   * backwards (a failover to a replica that had not received the last publications): positions of the old epoch
   * can no longer be vouched for, so clients holding them must be told `recovered: false`.
   * Returns the epoch now current.
   */
  rotateEpoch(channel: string, epoch: string): Promise<string>;
}

export interface HistoryQuery {
  since?: StreamPosition;
  limit: number;
  reverse?: boolean;
  /** The channel's configured size and TTL, so a stream that expired can be recognised and its meta renewed. */
  historySize: number;
  historyTtlMs: number;
  /** How long the stream's meta (epoch, top offset) outlives its last publication. */
  historyMetaTtlMs: number;
}

export interface HistoryResult {
  publications: Publication[];
  position: StreamPosition;
}
