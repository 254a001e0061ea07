import { randomBytes } from 'node:crypto';
import type { Engine } from '../engine.js';
import { RedisBroker } from './broker.js';
import { RedisConnections, type RedisConnectionEvent } from './connection.js';
import { RedisHistory } from './history.js';
import { RedisLifecycle } from './lifecycle.js';
import { epochSource, redisKeys } from './keys.js';
import { RedisPresence } from './presence.js';
import { RedisMapBroker } from './map-broker.js';
import {
  ShardedBroker,
  ShardedHistory,
  ShardedLifecycle,
  ShardedMapBroker,
  ShardedPresence,
  type Shard,
} from './shards.js';

export interface RedisEngineOptions {
  /** REDIS_URL: one Redis, or several (shards, in the same order on every node). Ignored with `clusterNodes`. */
  url?: string | string[];
  /**
   * HERALD_REDIS_CLUSTER_NODES: a Redis Cluster, given by some of its nodes (`host:port` or
   * `redis[s]://[user:password@]host:port`). Every channel's keys share one hash slot; feeds use sharded pub/sub.
   */
  clusterNodes?: string[];
  /** HERALD_REDIS_PREFIX: every key and pub/sub channel starts with it. @default 'herald' */
  prefix?: string;
  /** A Redis command unanswered for this long fails with code 100. @default 2000 */
  commandTimeoutMs?: number;
  /** A publish is acknowledged only once this many replicas have it (WAIT). @default 0 */
  minReplicas?: number;
  /** How long a stream's epoch and top offset outlive its last publication. @default 30 days */
  historyMetaTtlMs?: number;
  /** Connection events; `shard` is the index of the Redis in the list. */
  onEvent?: (event: RedisConnectionEvent, shard: number) => void;
  onError?: (what: string, err: unknown) => void;
}

/**
 * The scale-out engine: broker, history and presence in Redis, shared by every node with the same prefix. With
 * several Redis instances each channel lives on one of them (shards.ts); each node claims `<prefix>.shard` on every
 * instance with its place in the list, so nodes whose lists disagree are not ready instead of silently splitting
 * channels.
 */
export function createRedisEngine(options: RedisEngineOptions): Engine {
  const cluster = options.clusterNodes;
  if (cluster !== undefined && cluster.length === 0) throw new Error('createRedisEngine: clusterNodes is empty');
  const urls = cluster ? ['cluster'] : typeof options.url === 'string' ? [options.url] : (options.url ?? []);
  if (urls.length === 0) throw new Error('createRedisEngine: no Redis URL');
  const keys = redisKeys(options.prefix ?? 'herald', { cluster: cluster !== undefined });
  const nextEpoch = epochSource(randomBytes(5).toString('base64url'));
  const metaTtlMs = options.historyMetaTtlMs ?? 30 * 24 * 3600 * 1000;
  const identityKey = `${options.prefix ?? 'herald'}.shard`;
  const connections: RedisConnections[] = [];
  const shards: Shard[] = urls.map((url, index) => {
    const place = `${index + 1}/${urls.length}`;
    const redis = new RedisConnections({
      ...(cluster ? { clusterNodes: cluster } : { url }),
      commandTimeoutMs: options.commandTimeoutMs,
      onEvent: options.onEvent && ((e) => options.onEvent!(e, index)),
      // A cluster is one Redis to Herald: no shard list to agree on.
      identity: cluster
        ? undefined
        : {
            key: identityKey,
            value: place,
            describe: (found) =>
              `REDIS_URL lists this Redis as shard ${place}, but other nodes use it as shard ${found} (key ${identityKey}). ` +
              'Every node must list the same Redis instances in the same order. To re-shard on purpose, stop every node, ' +
              `run DEL ${identityKey} on each Redis, and start them with the new list (@herald/server/docs/scaling.md).`,
          },
    });
    connections.push(redis);
    const map = new RedisMapBroker(redis, keys, nextEpoch, options.onError ?? (() => {}));
    map.startSweeper();
    return {
      map,
      broker: new RedisBroker(
        redis,
        keys,
        metaTtlMs,
        options.onError ?? (() => {}),
        nextEpoch,
        index === 0,
        options.minReplicas ?? 0,
      ),
      history: new RedisHistory(redis, keys, nextEpoch),
      presence: new RedisPresence(redis, keys),
      lifecycle: new RedisLifecycle(redis, keys),
    };
  });
  const single = shards.length === 1 ? shards[0]! : undefined;
  const broker = single?.broker ?? new ShardedBroker(shards);
  const map = single?.map ?? new ShardedMapBroker(shards);
  return {
    name: 'redis',
    // Every node with the same prefix shares it.
    capabilities: { shared: true },
    broker,
    history: single?.history ?? new ShardedHistory(shards),
    presence: single?.presence ?? new ShardedPresence(shards),
    lifecycle: single?.lifecycle ?? new ShardedLifecycle(shards),
    map,
    isReady: () => connections.every((c) => c.isReady()),
    notReadyReason() {
      const problems = connections.flatMap((c, i) => {
        const p = c.problem();
        return p === undefined ? [] : [urls.length > 1 ? `redis shard ${i + 1}/${urls.length}: ${p}` : `redis: ${p}`];
      });
      return problems.join('; ') || 'redis engine not ready';
    },
    async close() {
      await map.close();
      await broker.close();
      await Promise.all(connections.map((c) => c.close()));
    },
  };
}

export { shardOf } from './shards.js';
export type { RedisConnectionEvent } from './connection.js';
