import type { Broker, BrokerEventHandler, ControlMessage, PublishOptions } from '../broker.js';
import type { History, HistoryQuery, HistoryResult } from '../history.js';
import type { LifecycleStore } from '../lifecycle.js';
import type {
  MapBroker,
  MapChange,
  MapStateQuery,
  MapStateResult,
  MapUpdateResult,
  MapWriteOptions,
} from '../map-broker.js';
import type { PresenceManager, PresenceStats } from '../presence.js';
import type { ClientInfo, PublicationInput, StreamPosition } from '../types.js';

/**
 * Sharding across several independent Redis instances (REDIS_URL lists them, comma-separated). Every channel lives
 * wholly on one shard: its stream, meta, idempotency keys, presence and feed. So one publish is still one script on
 * one Redis, and a channel's offsets stay in order. Node-to-node control messages go through shard 0.
 *
 * The shard of a channel is chosen by rendezvous (highest random weight) hashing of the channel name. Every node
 * computes the same answer from the same ordered list, and adding a shard at the end moves only the channels that
 * now score highest on it (about 1/(n+1) of them). The function is part of the stored layout: changing it would
 * move channels between shards under a rolling upgrade, so a test pins its output.
 */
export function shardOf(channel: string, shardCount: number): number {
  if (shardCount <= 1) return 0;
  const h = fnv1a(channel);
  let best = 0;
  let bestScore = -1;
  for (let i = 0; i < shardCount; i++) {
    const score = mix32(h ^ Math.imul(i + 1, 0x9e3779b1));
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  }
  return best;
}

/** 32-bit FNV-1a over the UTF-16 code units of s. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's 32-bit finalizer: every input bit affects every output bit. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** One Redis instance's part of the engine. */
export interface Shard {
  broker: Broker;
  map: MapBroker;
  history: History;
  presence: PresenceManager;
  lifecycle: LifecycleStore;
}

/** Routes each channel's calls to its shard; control messages to shard 0. */
export class ShardedBroker implements Broker {
  constructor(private readonly shards: Shard[]) {}

  private of(channel: string): Broker {
    return this.shards[shardOf(channel, this.shards.length)]!.broker;
  }

  async run(handler: BrokerEventHandler): Promise<void> {
    const n = this.shards.length;
    // A shard's feed loss concerns only that shard's channels.
    await Promise.all(
      this.shards.map((s, i) =>
        s.broker.run({
          onPublication: (channel, pub, position) => handler.onPublication(channel, pub, position),
          onJoin: (channel, info) => handler.onJoin(channel, info),
          onLeave: (channel, info) => handler.onLeave(channel, info),
          onControl: (message) => handler.onControl(message),
          onFeedInterrupted: () => handler.onFeedInterrupted((channel) => shardOf(channel, n) === i),
        }),
      ),
    );
  }

  publish(channel: string, pub: PublicationInput, options: PublishOptions): Promise<StreamPosition> {
    return this.of(channel).publish(channel, pub, options);
  }

  publishJoin(channel: string, info: ClientInfo): Promise<void> {
    return this.of(channel).publishJoin(channel, info);
  }

  publishLeave(channel: string, info: ClientInfo): Promise<void> {
    return this.of(channel).publishLeave(channel, info);
  }

  publishControl(message: ControlMessage): Promise<void> {
    return this.shards[0]!.broker.publishControl(message);
  }

  subscribe(channel: string): Promise<void> {
    return this.of(channel).subscribe(channel);
  }

  unsubscribe(channel: string): Promise<void> {
    return this.of(channel).unsubscribe(channel);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.broker.close()));
  }
}

export class ShardedHistory implements History {
  constructor(private readonly shards: Shard[]) {}

  history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    return this.shards[shardOf(channel, this.shards.length)]!.history.history(channel, query);
  }

  removeHistory(channel: string): Promise<void> {
    return this.shards[shardOf(channel, this.shards.length)]!.history.removeHistory(channel);
  }

  rotateEpoch(channel: string, epoch: string): Promise<string> {
    return this.shards[shardOf(channel, this.shards.length)]!.history.rotateEpoch(channel, epoch);
  }
}

export class ShardedPresence implements PresenceManager {
  constructor(private readonly shards: Shard[]) {}

  private of(channel: string): PresenceManager {
    return this.shards[shardOf(channel, this.shards.length)]!.presence;
  }

  addPresence(channel: string, info: ClientInfo, ttlMs: number): Promise<void> {
    return this.of(channel).addPresence(channel, info, ttlMs);
  }

  removePresence(channel: string, clientId: string, user: string): Promise<void> {
    return this.of(channel).removePresence(channel, clientId, user);
  }

  presence(channel: string): Promise<Map<string, ClientInfo>> {
    return this.of(channel).presence(channel);
  }

  presenceStats(channel: string): Promise<PresenceStats> {
    return this.of(channel).presenceStats(channel);
  }
}

/** Each channel's lifecycle holds on its shard; a sweep walks every shard. */
export class ShardedLifecycle implements LifecycleStore {
  constructor(private readonly shards: Shard[]) {}

  private of(channel: string): LifecycleStore {
    return this.shards[shardOf(channel, this.shards.length)]!.lifecycle;
  }

  hold(channel: string, key: string, node: string, ttlMs: number): Promise<boolean> {
    return this.of(channel).hold(channel, key, node, ttlMs);
  }

  release(channel: string, key: string, node: string): Promise<boolean> {
    return this.of(channel).release(channel, key, node);
  }

  async sweep(limit: number): Promise<{ channel: string; key: string }[]> {
    return (await Promise.all(this.shards.map((s) => s.lifecycle.sweep(limit)))).flat();
  }
}

/** Routes each map channel's calls to its shard (the shard of its stream, meta and feed). */
export class ShardedMapBroker implements MapBroker {
  constructor(private readonly shards: Shard[]) {}

  private of(channel: string): MapBroker {
    return this.shards[shardOf(channel, this.shards.length)]!.map;
  }

  publish(channel: string, key: string, change: MapChange, options: MapWriteOptions): Promise<MapUpdateResult> {
    return this.of(channel).publish(channel, key, change, options);
  }

  remove(channel: string, key: string, options: MapWriteOptions): Promise<MapUpdateResult> {
    return this.of(channel).remove(channel, key, options);
  }

  readState(channel: string, query: MapStateQuery): Promise<MapStateResult> {
    return this.of(channel).readState(channel, query);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.map.close()));
  }
}
