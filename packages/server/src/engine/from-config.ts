import type { HeraldConfig } from '../config/index.js';
import type { Logger } from '../logger.js';
import { deferredEngine } from './deferred.js';
import type { Engine } from './engine.js';
import { createMemoryEngine } from './memory/index.js';
import { redactRedisUrl } from './redis/url.js';
import { ConfigError } from '../config/index.js';
import { isInstalled, isMissing, missingDependency } from '../optional-deps.js';

/**
 * Engines by name (HERALD_ENGINE): memory (the single-node default) or redis (scale-out, docs/scaling.md). The Redis
 * engine (and ioredis with it) is imported only when configured; calls made while it loads wait for it. ioredis is an
 * optional peer dependency: without it, this throws a ConfigError naming `npm install ioredis`.
 */
export function engineFromConfig(config: HeraldConfig, log: Logger): Engine {
  if (config.engine !== 'redis') return createMemoryEngine();
  if (!isInstalled('ioredis')) throw new ConfigError([missingDependency('redis-engine')]);
  const clusterNodes = config.redisClusterNodes;
  const many = !clusterNodes && config.redisUrls.length > 1;
  const where = clusterNodes
    ? [`cluster ${clusterNodes.map((n) => (n.includes('://') ? redactRedisUrl(n, 'node') : n)).join(',')}`]
    : config.redisUrls.map((u, i) =>
        redactRedisUrl(u, many ? `REDIS_URL entry ${i + 1} (unparsable)` : 'REDIS_URL (unparsable)'),
      );
  return deferredEngine({
    name: 'redis',
    capabilities: { shared: true },
    lifecycle: true,
    map: true,
    load: async () =>
      (
        await import('./redis/index.js').catch((err: unknown) => {
          throw isMissing(err, 'ioredis') ? new ConfigError([missingDependency('redis-engine')]) : err;
        })
      ).createRedisEngine({
        url: config.redisUrls,
        ...(clusterNodes ? { clusterNodes } : {}),
        prefix: config.redisPrefix,
        commandTimeoutMs: config.redisTimeoutMs,
        minReplicas: config.redisMinReplicas,
        onEvent(e, i) {
          const at = many ? { redis: where[i], shard: `${i + 1}/${config.redisUrls.length}` } : { redis: where[i] };
          if (e.type === 'connected')
            log.info({ ...at, role: e.role }, e.reconnect ? 'redis reconnected' : 'redis connected');
          else if (e.type === 'disconnected')
            log.warn(
              { ...at, role: e.role },
              'redis connection lost: publishes fail with 503 until it is back; reconnecting with backoff',
            );
          else if (e.type === 'unreachable')
            log.warn(
              { ...at, role: e.role, error: e.error },
              'redis not reachable: /ready is 503 and publishes fail until it is; retrying with backoff (check REDIS_URL)',
            );
          else if (e.type === 'unhealthy')
            log.warn(
              { ...at, error: e.error },
              'redis stopped answering: /ready is 503 and publishes fail until it answers again',
            );
          else if (e.type === 'topology') {
            if (e.ok) log.info({ ...at }, 'redis shard list agrees with the other nodes again');
            else log.error({ ...at, code: 'redis_shard_mismatch' }, `${e.message} Until then /ready is 503.`);
          } else if (e.type === 'feed-moved')
            log.warn(
              { ...at, why: e.message, code: 'redis_feed_moved' },
              'redis cluster feed lost (a primary failed or a slot moved): subscribing again on the current primaries, then recovering clients from history',
            );
          else log.info({ ...at }, 'redis answers again');
        },
        onError: (what, err) => log.warn({ err, what }, 'redis engine error'),
      }),
  });
}
