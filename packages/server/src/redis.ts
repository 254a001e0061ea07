/**
 * `@herald/server/redis`: the Redis engine for `createHerald({ engine })` (docs/scaling.md). A separate entry point,
 * so that `@herald/server` alone never loads ioredis; HERALD_ENGINE=redis imports it on its own.
 */
export {
  createRedisEngine,
  shardOf,
  type RedisEngineOptions,
  type RedisConnectionEvent,
} from './engine/redis/index.js';
