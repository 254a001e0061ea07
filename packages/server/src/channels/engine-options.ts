import type { NamespaceOptions } from '../config/index.js';
import type { PublishOptions } from '../engine/broker.js';
import type { HistoryQuery } from '../engine/history.js';
import type { MapWriteOptions } from '../engine/map-broker.js';

/**
 * A namespace's options as the engine takes them: the one place channel rules (ChannelRules.options) become engine
 * arguments, for client, API and server-side reads and publishes alike.
 */

/** What a history read tells the engine about the channel's stream. */
export type StreamOptions = Pick<HistoryQuery, 'historySize' | 'historyTtlMs' | 'historyMetaTtlMs'>;

/** The stream options of every history read (history commands, recovery, positioning, feed checks). */
export function streamOptions(o: NamespaceOptions): StreamOptions {
  const m = o.map;
  // A map channel's stream holds its changes: stream_size / stream_ttl of its map options.
  if (m)
    return {
      historySize: m.stream_size,
      historyTtlMs: m.stream_ttl_ms,
      historyMetaTtlMs: Math.max(m.meta_ttl_ms, m.key_ttl_ms, m.stream_ttl_ms),
    };
  return { historySize: o.history_size, historyTtlMs: o.history_ttl_ms, historyMetaTtlMs: o.history_meta_ttl_ms };
}

/** The options of a publish (a new object each call: the caller may add an idempotency key). */
export function publishOptions(o: NamespaceOptions): PublishOptions {
  return { historySize: o.history_size, historyTtlMs: o.history_ttl_ms };
}

/** The options of a map publish or remove (a new object each call: the caller may add an idempotency key). */
export function mapWriteOptions(m: NonNullable<NamespaceOptions['map']>): MapWriteOptions {
  return {
    keyTtlMs: m.key_ttl_ms,
    streamSize: m.stream_size,
    streamTtlMs: m.stream_ttl_ms,
    metaTtlMs: Math.max(m.meta_ttl_ms, m.key_ttl_ms, m.stream_ttl_ms),
  };
}
