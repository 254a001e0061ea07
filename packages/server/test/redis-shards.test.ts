// Channels spread over several Redis instances: which shard a channel lives on, that all of a channel's keys live
// there, that REDIS_URL lists are read and checked, and that nodes whose lists disagree are refused.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config/index.js';
import { shardOf } from '../src/engine/redis/index.js';
import { dropPrefix, redisDb, redisTestEngine, uniquePrefix } from './support/engines.js';

const historyOptions = { historySize: 10, historyTtlMs: 60_000 };

describe('shardOf', () => {
  test('gives the same shard for the same channel and list length, pinned so a new version never moves channels', () => {
    const pinned = ['news', 'chat:room-1', 'user:42#42', 'a', '', 'café', 'orders:eu-west:7'].map((c) => [
      shardOf(c, 2),
      shardOf(c, 3),
      shardOf(c, 5),
    ]);
    assert.deepEqual(pinned, [
      [1, 1, 4],
      [0, 0, 0],
      [0, 0, 0],
      [0, 0, 4],
      [0, 0, 0],
      [1, 1, 3],
      [1, 2, 2],
    ]);
    assert.equal(shardOf('anything', 1), 0);
  });

  test('spreads 30,000 channels evenly over 3 shards', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[shardOf(`chan:${i}`, 3)]!++;
    for (const c of counts) assert.ok(c > 9_000 && c < 11_000, `each shard holds about a third: ${counts.join(', ')}`);
  });

  test('adding a shard at the end moves only the channels that go to the new shard, about 1/4 of them', () => {
    let moved = 0;
    for (let i = 0; i < 20_000; i++) {
      const before = shardOf(`chan:${i}`, 3);
      const now = shardOf(`chan:${i}`, 4);
      if (now !== before) {
        assert.equal(now, 3, `chan:${i} moved from ${before} to ${now}, not to the new shard`);
        moved++;
      }
    }
    assert.ok(moved > 4_500 && moved < 5_500, `about a quarter moved: ${moved}`);
  });
});

describe('REDIS_URL with several Redis instances', () => {
  test('splits on commas before a redis:// or rediss:// URL and keeps commas inside a password', () => {
    const c = loadConfig({
      env: {
        HERALD_ENGINE: 'redis',
        REDIS_URL: 'redis://:pa,ss@10.0.0.1:6379/0, rediss://10.0.0.2:6380,redis://10.0.0.3',
      },
    });
    assert.deepEqual(c.redisUrls, ['redis://:pa,ss@10.0.0.1:6379/0', 'rediss://10.0.0.2:6380', 'redis://10.0.0.3']);
  });

  test('refuses an entry that is not a Redis URL and the same Redis listed twice, naming what to write', () => {
    assert.throws(
      () => loadConfig({ env: { HERALD_ENGINE: 'redis', REDIS_URL: 'redis://a:6379,redis://a:6379' } }),
      /REDIS_URL lists redis:\/\/a:6379 twice/,
    );
    assert.throws(
      () => loadConfig({ env: { HERALD_ENGINE: 'redis', REDIS_URL: 'localhost:6379' } }),
      /not a Redis URL; write redis:\/\//,
    );
  });

  test('reads Sentinel URLs: several Sentinels, the master name, a database, and the passwords, which logs never show', async () => {
    const { parseRedisTarget, redactRedisUrl } = await import('../src/engine/redis/url.js');
    const url = 'redis+sentinel://app:s3cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/my-primary/2?sentinel_password=sp';
    const c = loadConfig({
      env: { HERALD_ENGINE: 'redis', REDIS_URL: `${url},redis+sentinel://10.0.1.1:26379/other` },
    });
    assert.deepEqual(
      c.redisUrls,
      [url, 'redis+sentinel://10.0.1.1:26379/other'],
      'the commas between Sentinels stay inside their URL',
    );
    assert.deepEqual(parseRedisTarget(url), {
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'my-primary',
      db: 2,
      username: 'app',
      password: 's3cret',
      sentinelPassword: 'sp',
    });
    const shown = redactRedisUrl(url, '?');
    assert.ok(!shown.includes('s3cret') && !shown.includes('=sp'), shown);
    assert.throws(
      () => loadConfig({ env: { HERALD_ENGINE: 'redis', REDIS_URL: 'redis+sentinel://10.0.0.1:26379' } }),
      /<master name>/,
    );
    assert.throws(
      () => loadConfig({ env: { HERALD_ENGINE: 'redis', REDIS_URL: 'redis+sentinel://h:26379/m?master=x' } }),
      /unknown parameter "master"/,
    );
  });
});

describe('the Redis engine over two shards', () => {
  const shardUrls = [redisDb(0), redisDb(1)];
  const admins = shardUrls.map((u) => new Redis(u, { maxRetriesPerRequest: 1 }));
  after(() => admins.forEach((a) => a.disconnect()));

  test("keeps every key of a channel on the channel's shard, and uses both shards", async () => {
    const prefix = uniquePrefix('shards');
    const engine = await redisTestEngine({ url: shardUrls, prefix });
    try {
      const channels = Array.from({ length: 40 }, (_, i) => `spread:${i}`);
      for (const ch of channels) {
        await engine.broker.publish(ch, { data: JSON.stringify({ ch }) }, historyOptions);
        await engine.presence.addPresence(ch, { client: `c-${ch}`, user: 'u' }, 60_000);
      }
      const used = new Set<number>();
      for (const ch of channels) {
        const home = shardOf(ch, 2);
        used.add(home);
        for (const [i, admin] of admins.entries()) {
          const n = await admin.exists(
            `${prefix}.stream.{${ch}}`,
            `${prefix}.meta.{${ch}}`,
            `${prefix}.presence.{${ch}}`,
          );
          assert.equal(n, i === home ? 3 : 0, `${ch}: keys on shard ${i + 1} (its home is ${home + 1})`);
        }
        const h = await engine.history.history(ch, {
          limit: -1,
          historySize: 10,
          historyTtlMs: 60_000,
          historyMetaTtlMs: 60_000,
        });
        assert.deepEqual(
          h.publications.map((p) => JSON.parse(p.data)),
          [{ ch }],
        );
        assert.deepEqual([...(await engine.presence.presence(ch)).keys()], [`c-${ch}`]);
      }
      assert.deepEqual([...used].sort(), [0, 1], 'channels live on both shards');
      assert.deepEqual(
        await Promise.all(admins.map((a) => a.get(`${prefix}.shard`))),
        ['1/2', '2/2'],
        'each Redis knows its place',
      );
    } finally {
      await engine.close();
    }
  });

  test('an engine that lists the shards in another order than the nodes before it is not ready and says why', async () => {
    const prefix = uniquePrefix('shards');
    const first = await redisTestEngine({ url: shardUrls, prefix });
    const swapped = (await import('../src/engine/redis/index.js')).createRedisEngine({
      url: [...shardUrls].reverse(),
      prefix,
    });
    try {
      const deadline = Date.now() + 5000;
      while (!/other nodes use it as shard/.test(swapped.notReadyReason?.() ?? '') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(swapped.isReady(), false);
      assert.match(
        swapped.notReadyReason!(),
        /redis shard 1\/2: REDIS_URL lists this Redis as shard 1\/2, but other nodes use it as shard 2\/2/,
      );
      assert.match(swapped.notReadyReason!(), /same order/);
      assert.equal(first.isReady(), true, 'the nodes that were there first stay ready');
      // Once the claims are cleared (a deliberate re-shard), the node becomes ready by itself.
      await first.close();
      await Promise.all(admins.map((a) => a.del(`${prefix}.shard`)));
      const until = Date.now() + 5000;
      while (!swapped.isReady() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(swapped.isReady(), true, `ready after the claims were cleared (${swapped.notReadyReason?.()})`);
    } finally {
      await swapped.close();
      await Promise.all(shardUrls.map((u) => dropPrefix(prefix, u)));
    }
  });
});
