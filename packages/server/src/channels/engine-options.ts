import type { NamespaceOptions } from '../config/index.js';
import type { PublishOptions } from '../engine/broker.js';
import type { HistoryQuery } from '../engine/history.js';

/**
 * A namespace's options as the engine takes them: the one place channel rules (ChannelRules.options) become engine
 * arguments, for client, API and server-side reads and publishes alike.
 */

/** What a history read tells the engine about the channel's stream. */
export type StreamOptions = Pick<HistoryQuery, 'historySize' | 'historyTtlMs' | 'historyMetaTtlMs'>;

/** The stream options of every history read (history commands, recovery, positioning, feed checks). */
export function streamOptions(o: NamespaceOptions): StreamOptions {
  return { historySize: o.history_size, historyTtlMs: o.history_ttl_ms, historyMetaTtlMs: o.history_meta_ttl_ms };
}

/** The options of a publish (a new object each call: the caller may add an idempotency key). */
export function publishOptions(o: NamespaceOptions): PublishOptions {
  return { historySize: o.history_size, historyTtlMs: o.history_ttl_ms };
}
