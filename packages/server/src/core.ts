import type { NodeInfo } from './engine/broker.js';
import type { HistoryResult } from './engine/history.js';
import type { PresenceStats } from './engine/presence.js';
import type { ClientInfo, StreamPosition } from './engine/types.js';

/** Where a publication came from: the `source` label of `herald_publications_total`. */
export type PublishSource = 'api' | 'server' | 'outbox' | 'client';

export interface PublishCallOptions {
  tags?: Record<string, string>;
  idempotencyKey?: string;
  /** @default 'server' (the in-process API); the HTTP API says 'api', the outbox 'outbox'. */
  source?: PublishSource;
}

export interface MapPublishCallOptions {
  tags?: Record<string, string>;
  idempotencyKey?: string;
  /** @default 'server' */
  source?: PublishSource;
}

/** The answer of map_publish and map_remove (Centrifugo's MapPublishResult / MapRemoveResult). */
export interface MapUpdateAnswer {
  offset: number;
  epoch: string;
  /** Nothing changed: a remove of a key that is not there, or an idempotency key seen before. */
  suppressed: boolean;
  suppressReason?: string;
}

/** Bounds on what one API call may make Herald do and build (config: HERALD_API_MAX_*, HERALD_MAX_JSON_DEPTH). */
export interface ApiLimits {
  /** Nesting of `data` (HERALD_MAX_JSON_DEPTH); deeper is 400. */
  maxJsonDepth: number;
  /** Bytes of one answer, a batch's replies together (HERALD_API_MAX_REPLY_SIZE); past it error 106. */
  maxReplyBytes: number;
  /** Commands in one batch (HERALD_API_MAX_BATCH); more is 400. */
  maxBatchCommands: number;
  /** Channels in one broadcast (HERALD_API_MAX_BROADCAST); more is 400. */
  maxBroadcastChannels: number;
}

/**
 * The operations the HTTP API, the in-process API and the outbox share. The node (node.ts) implements them; the API
 * (api/) depends on this interface only, never on the node or the Herald front (herald.ts).
 */
export interface HeraldCore {
  publish(channel: string, data: unknown, opts?: PublishCallOptions): Promise<StreamPosition>;
  subscribeUser(user: string, channel: string, client?: string): Promise<void>;
  unsubscribeUser(user: string, channel: string, client?: string): Promise<void>;
  disconnectUser(user: string, opts?: { client?: string; code?: number; reason?: string }): Promise<void>;
  presence(channel: string): Promise<Map<string, ClientInfo>>;
  presenceStats(channel: string): Promise<PresenceStats>;
  history(
    channel: string,
    opts?: { limit?: number; since?: StreamPosition; reverse?: boolean },
  ): Promise<HistoryResult>;
  removeHistory(channel: string): Promise<void>;
  /** Sets `key` of a map channel (subscription_type "map"): state, stream and subscribers in one step. */
  mapPublish(channel: string, key: string, data: unknown, opts?: MapPublishCallOptions): Promise<MapUpdateAnswer>;
  /** Removes `key` of a map channel; `suppressed` when it was not there. */
  mapRemove(channel: string, key: string, opts?: { idempotencyKey?: string }): Promise<MapUpdateAnswer>;
  channels(): Promise<Map<string, number>>;
  nodes(): Omit<NodeInfo, 'channels' | 'updatedAt' | 'uid'>[];
  /** Bounds on API calls (HERALD_API_MAX_*, HERALD_MAX_JSON_DEPTH); defaults when absent. */
  readonly apiLimits?: ApiLimits;
}
