import { Redis } from 'ioredis';
import type { Engine } from '../../src/engine/engine.js';
import { createMemoryEngine } from '../../src/engine/memory/index.js';
import { createRedisEngine, type RedisEngineOptions } from '../../src/engine/redis/index.js';
import { startRedisCluster } from './redis-cluster.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

let prefixSeq = 0;
/** A key prefix no other test run or test uses, so parallel runs never collide. */
export function uniquePrefix(what = 'test'): string {
  return `herald-${what}-${process.pid}-${Date.now().toString(36)}-${++prefixSeq}`;
}

/** Deletes every key under `prefix` (tests leave nothing behind in the shared Redis). */
export async function dropPrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}.*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

/** A Redis engine on its own prefix; closing it also removes its keys. Fails loudly when Redis is down. */
export async function redisTestEngine(options: Partial<RedisEngineOptions> = {}): Promise<Engine> {
  const prefix = options.prefix ?? uniquePrefix();
  const url = options.url ?? REDIS_URL;
  const urls = options.clusterNodes ?? (typeof url === 'string' ? [url] : url);
  const engine = createRedisEngine({ url, prefix, commandTimeoutMs: 2000, ...options });
  const deadline = Date.now() + 5000;
  while (!engine.isReady()) {
    if (Date.now() > deadline) {
      await engine.close();
      throw new Error(
        `Redis at ${urls.join(', ')} is not ready (${engine.notReadyReason?.()}): start it (redis-server --port 6379) before the tests`,
      );
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const close = engine.close.bind(engine);
  return Object.assign(engine, {
    async close() {
      await close();
      if (!options.clusterNodes) await Promise.all(urls.map((u) => dropPrefix(prefix, u).catch(() => {})));
    },
  });
}

/** A Redis engine on a 6-node Redis Cluster of its own (support/redis-cluster.ts), stopped when the engine closes. */
export async function redisClusterTestEngine(options: Partial<RedisEngineOptions> = {}): Promise<Engine> {
  const cluster = await startRedisCluster();
  try {
    const engine = await redisTestEngine({ clusterNodes: [cluster.nodesEnv.split(',')[0]!], ...options });
    const close = engine.close.bind(engine);
    return Object.assign(engine, {
      async close() {
        await close();
        await cluster.stop();
      },
    });
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/** REDIS_URL with another logical database: a second shard that shares the server but none of its keys. */
export function redisDb(db: number, url = REDIS_URL): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/**
 * Every engine the conformance suite runs against. An engine joins the suite by adding a factory here.
 */
export const engineFactories: Record<string, () => Promise<Engine>> = {
  memory: async () => createMemoryEngine(),
  redis: () => redisTestEngine(),
  // Channels spread over two shards (databases 0 and 1 here; separate servers in tests/scaling/sharded.test.ts).
  'redis-sharded': () => redisTestEngine({ url: [redisDb(0), redisDb(1)] }),
  // A 6-node Redis Cluster started for the suite (3 primaries, 3 replicas; sharded pub/sub).
  'redis-cluster': () => redisClusterTestEngine(),
};

/**
 * Engines that start processes of their own for every instance (a 6-node cluster takes ~3 s): suites that build an
 * engine per test would take minutes on them. By default only the engine contract runs on them (one instance);
 * HERALD_TEST_ENGINES=redis-cluster runs every engine suite on the cluster.
 */
export const heavyEngineNames = ['redis-cluster'];

/** The engines to run (HERALD_TEST_ENGINES=memory,redis); an unknown name stops the run instead of dropping out. */
export const engineNames = (
  process.env.HERALD_TEST_ENGINES ??
  Object.keys(engineFactories)
    .filter((n) => !heavyEngineNames.includes(n))
    .join(',')
)
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '');
const unknownEngines = engineNames.filter((s) => !Object.hasOwn(engineFactories, s));
if (unknownEngines.length > 0 || engineNames.length === 0) {
  throw new Error(
    `HERALD_TEST_ENGINES names ${unknownEngines.length > 0 ? `unknown engines: ${unknownEngines.join(', ')}` : 'no engine'}; known: ${Object.keys(engineFactories).join(', ')}`,
  );
}
