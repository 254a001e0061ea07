import type { ClientInfo, Publication, PublicationInput, StreamPosition } from './types.js';

/**
 * Broker: moves publications, join/leave events and control messages between the nodes that serve a channel.
 *
 * Contract (every implementation: memory/broker.ts, redis/broker.ts):
 * - `publish` with `historySize > 0` appends to the channel's history stream AND delivers to subscribed nodes as
 *   ONE atomic step per channel: two publishes to one channel get consecutive offsets and every node sees them in
 *   offset order. It resolves with the publication's position only once the publication is stored; it rejects
 *   (HeraldError code 100, temporary) when the data may not have been stored. It never resolves for lost data.
 * - `publish` with `historySize === 0` delivers without storing; offset 0.
 * - Delivery goes to `BrokerEventHandler.onPublication` on every node that called `subscribe(channel)`,
 *   including the publishing node, in offset order per channel.
 * - `subscribe` / `unsubscribe` are per node and per channel (not per client): the node hub calls them when its
 *   first local subscriber arrives and when its last one leaves.
 * - When the feed from other nodes may have missed messages (connection to the shared store lost and restored),
 *   the broker calls `onFeedInterrupted`; the node then makes its clients recover.
 *
 * Failures (every method of Broker, History and PresenceManager; callers such as the outbox decide retry versus
 * dead-letter on `temporary` alone):
 * - `HeraldError` with `temporary: true` (code 100): the store is down, unreachable, did not answer within its
 *   timeout, or answered that it cannot serve now (Redis READONLY, LOADING, MASTERDOWN, BUSY, OOM, ...). The same
 *   call may succeed later: retry with backoff (with an idempotency key for publishes).
 * - `HeraldError` with `temporary: false` (code 107 bad request): the store refused the request's arguments (Redis
 *   `ERR Invalid stream ID`, `ERR value is not an integer`, ...). The same call fails every time: do not retry it.
 *   Nothing was stored.
 * - Any other code is the engine's own refusal, with `temporary` as HeraldError sets it for that code.
 */
export interface Broker {
  /** Starts delivering events to `handler`. Called once, before any other method. */
  run(handler: BrokerEventHandler): Promise<void>;
  publish(channel: string, pub: PublicationInput, options: PublishOptions): Promise<StreamPosition>;
  publishJoin(channel: string, info: ClientInfo): Promise<void>;
  publishLeave(channel: string, info: ClientInfo): Promise<void>;
  /** Sends a control message to every node, this one included. */
  publishControl(message: ControlMessage): Promise<void>;
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  close(): Promise<void>;
}

export interface PublishOptions {
  /** Keep at most this many publications in the channel's stream; 0 means no history. */
  historySize: number;
  /** Publications older than this are dropped from history; the stream's meta (epoch, top offset) lives longer. */
  historyTtlMs: number;
  /** A publish with the same key within `idempotentResultTtlMs` returns the first result and is not delivered again. */
  idempotencyKey?: string;
  idempotentResultTtlMs?: number;
}

export interface BrokerEventHandler {
  /** `position.epoch` is the stream's epoch when the publication has history, '' otherwise. */
  onPublication(channel: string, pub: Publication, position: StreamPosition): void;
  onJoin(channel: string, info: ClientInfo): void;
  onLeave(channel: string, info: ClientInfo): void;
  onControl(message: ControlMessage): void;
  /**
   * The broker's feed was interrupted and restored: any channel may have missed publications, or, with `affects`,
   * any channel it accepts (one shard's).
   */
  onFeedInterrupted(affects?: (channel: string) => boolean): void;
}

/** Node-to-node commands, so that the HTTP API reaches clients on every node. */
export type ControlMessage =
  | { type: 'disconnect'; user: string; client?: string; code: number; reason: string }
  | { type: 'unsubscribe'; user: string; channel: string; client?: string }
  | { type: 'subscribe'; user: string; channel: string; client?: string }
  /** A `POST /emulation` relayed to the node holding the session's stream (emulation-relay.ts). */
  | {
      type: 'emulation';
      node: string;
      session: string;
      /** The commands' JSON text, or base64 of protobuf Commands when `binary`. */
      data: string;
      binary?: boolean;
      from: string;
      id: number;
    }
  /** The owning node's answer to a relayed `POST /emulation`: the HTTP status for the node that relayed it. */
  | { type: 'emulation_reply'; node: string; id: number; status: number }
  | { type: 'node'; node: NodeInfo };

export interface NodeInfo {
  uid: string;
  name: string;
  version: string;
  num_clients: number;
  num_users: number;
  num_channels: number;
  num_subs: number;
  uptime: number;
  /** Channels with at least one subscriber on that node. */
  channels?: string[];
  /** ms since epoch when this snapshot was taken; used to expire nodes that stop reporting. */
  updatedAt: number;
}
