import { randomBytes } from 'node:crypto';
import type { Engine } from '../engine.js';
import { RedisBroker } from './broker.js';
import { RedisConnections, type RedisConnectionEvent } from './connection.js';
import { RedisHistory } from './history.js';
import { epochSource, redisKeys } from './keys.js';
import { RedisPresence } from './presence.js';

export interface RedisEngineOptions {
  /** REDIS_URL */
  url: string;
  /** HERALD_REDIS_PREFIX: every key and pub/sub channel starts with it. @default 'herald' */
  prefix?: string;
  /** A Redis command unanswered for this long fails with code 100. @default 2000 */
  commandTimeoutMs?: number;
  /** How long a stream's epoch and top offset outlive its last publication. @default 30 days */
  historyMetaTtlMs?: number;
  onEvent?: (event: RedisConnectionEvent) => void;
  onError?: (what: string, err: unknown) => void;
}

/** The scale-out engine: broker, history and presence in Redis, shared by every node with the same prefix. */
export function createRedisEngine(options: RedisEngineOptions): Engine {
  const keys = redisKeys(options.prefix ?? 'herald');
  const redis = new RedisConnections({ url: options.url, commandTimeoutMs: options.commandTimeoutMs, onEvent: options.onEvent });
  const nextEpoch = epochSource(randomBytes(5).toString('base64url'));
  const broker = new RedisBroker(redis, keys, options.historyMetaTtlMs ?? 30 * 24 * 3600 * 1000, options.onError ?? (() => {}), nextEpoch);
  return {
    name: 'redis',
    broker,
    history: new RedisHistory(redis, keys, nextEpoch),
    presence: new RedisPresence(redis, keys),
    isReady: () => redis.isReady(),
    async close() {
      await broker.close();
      await redis.close();
    },
  };
}

export type { RedisConnectionEvent } from './connection.js';
