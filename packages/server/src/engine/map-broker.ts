import type { ClientInfo, Publication, StreamPosition } from './types.js';

/**
 * MapBroker: the keyed state of map channels (Centrifugo v6.8 map subscriptions, docs/protocol.md#map-subscriptions).
 *
 * A map channel has a state (key -> latest publication of that key) and the channel's stream (the same stream
 * History reads): every change, a publish or a removal, gets the stream's next offset. Contract (every
 * implementation: memory/map-broker.ts, redis/map-broker.ts):
 * - `publish` and `remove` update the state, append the change to the stream and deliver it to subscribed nodes
 *   (`BrokerEventHandler.onPublication`, publication with `key`, and `removed` for a removal) as ONE atomic step
 *   per channel, like Broker.publish: changes get consecutive offsets and every node sees them in offset order.
 *   They resolve once the change is stored; they reject (HeraldError 100, temporary) when it may not have been.
 * - A removal of a key that is not in the state changes nothing: `suppressed: true`, no offset used, nothing
 *   delivered. A publish or remove with an idempotency key seen within its TTL answers the first result again,
 *   `suppressed: true`, and delivers nothing.
 * - `streamSize: 0` (ephemeral maps) still gives every change an offset and the stream an epoch (so a subscriber's
 *   state and the live changes line up exactly, see Hub.activate) but keeps no change for recovery.
 * - A key with a TTL (`keyTtlMs > 0`) that is not published again within it is removed by the broker itself: the
 *   removal is a change like any other (offset, stream, delivery), made once across nodes.
 * - `readState` answers a page of the state in key order (`cursor`: the last key of the previous page, '' for the
 *   first), entries with their `key` and the offset of their last change, and the stream position the page is
 *   consistent with: every change up to `position.offset` is reflected in the page and none after it. `cursor` of
 *   the answer is '' on the last page.
 * - The stream is read through History.history with the map's stream options.
 */
export interface MapBroker {
  publish(channel: string, key: string, change: MapChange, options: MapWriteOptions): Promise<MapUpdateResult>;
  remove(channel: string, key: string, options: MapWriteOptions): Promise<MapUpdateResult>;
  readState(channel: string, query: MapStateQuery): Promise<MapStateResult>;
  /** Stops the TTL sweeper. */
  close(): Promise<void>;
}

export interface MapChange {
  /** JSON text of the value. */
  data: string;
  info?: ClientInfo;
  tags?: Record<string, string>;
}

export interface MapWriteOptions {
  /** A key not published again within this many ms is removed; 0: never. */
  keyTtlMs: number;
  /** Changes kept for recovery; 0 keeps none (offsets and epoch still move). */
  streamSize: number;
  streamTtlMs: number;
  /** How long the stream's epoch and top offset outlive the last change. */
  metaTtlMs: number;
  idempotencyKey?: string;
  idempotentResultTtlMs?: number;
  /**
   * Publish only when the key is not there; when it is, only its TTL is renewed (`suppressed`, 'key_exists'):
   * map presence entries, re-published while their client stays, without a change each time.
   */
  ifNew?: boolean;
}

export interface MapUpdateResult {
  position: StreamPosition;
  /** Nothing changed: the key was not there (remove), or the idempotency key was seen. */
  suppressed: boolean;
  suppressReason?: 'key_not_found' | 'key_exists' | 'idempotency';
}

export interface MapStateQuery {
  /** The last key of the previous page; '' for the first page. */
  cursor: string;
  /** Entries per page (> 0). */
  limit: number;
  /** The stream options, so a read renews nothing and a first read answers the channel's first epoch. */
  metaTtlMs: number;
}

export interface MapStateResult {
  /** Entries in key order, each with `key` and the offset of its last change. */
  entries: Publication[];
  position: StreamPosition;
  /** The cursor of the next page; '' when this was the last. */
  cursor: string;
}
