// Redis history reads (src/engine/redis/history.ts): the same read asked for several times in one event-loop turn is
// sent once and answers every caller (a reconnect storm's subscribers of one channel recovering from one offset).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { HistoryQuery } from '../src/engine/history.js';
import type { RedisConnections } from '../src/engine/redis/connection.js';
import { RedisHistory } from '../src/engine/redis/history.js';
import { redisKeys } from '../src/engine/redis/keys.js';
import { redisTestEngine } from './support/engines.js';

const q: HistoryQuery = { limit: -1, historySize: 100, historyTtlMs: 60_000, historyMetaTtlMs: 600_000 };

/** A RedisHistory over a fake commands connection that records each script call. */
function counted() {
  const calls: unknown[][] = [];
  const redis = {
    commands: {
      heraldHistory: async (...args: unknown[]) => {
        calls.push(args);
        return [3, 'ep'];
      },
    },
  } as unknown as RedisConnections;
  return { history: new RedisHistory(redis, redisKeys('t'), () => 'next'), calls };
}

describe('Redis history reads', () => {
  it('sends the same read asked three times in one turn once, and answers all three', async () => {
    const { history, calls } = counted();
    const since = { offset: 1, epoch: 'ep' };
    const rs = await Promise.all([1, 2, 3].map(() => history.history('chat', { ...q, since })));
    assert.equal(calls.length, 1);
    for (const r of rs) assert.deepEqual(r.position, { offset: 3, epoch: 'ep' });
  });

  it('sends reads that differ in channel, offset, limit or direction apart', async () => {
    const { history, calls } = counted();
    await Promise.all([
      history.history('chat', { ...q, since: { offset: 1, epoch: 'ep' } }),
      history.history('chat', { ...q, since: { offset: 2, epoch: 'ep' } }),
      history.history('news', { ...q, since: { offset: 1, epoch: 'ep' } }),
      history.history('chat', { ...q, since: { offset: 1, epoch: 'ep' }, limit: 10 }),
      history.history('chat', { ...q, since: { offset: 1, epoch: 'ep' }, reverse: true }),
    ]);
    assert.equal(calls.length, 5);
  });

  it('sends a read asked after the same one went out again, so no caller gets an answer older than its question', async () => {
    const { history, calls } = counted();
    const first = history.history('chat', q);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(calls.length, 1, 'the first read went out');
    await history.history('chat', q);
    await first;
    assert.equal(calls.length, 2);
  });

  it('on a real Redis, 50 subscribers recovering from one offset in one turn all get the missed publications', async () => {
    const engine = await redisTestEngine();
    try {
      const opts = { historySize: 100, historyTtlMs: 60_000 };
      for (let n = 1; n <= 10; n++) await engine.broker.publish('room', { data: JSON.stringify({ n }) }, opts);
      const top = await engine.history.history('room', { ...q, limit: 0 });
      const since = { offset: 4, epoch: top.position.epoch };
      const rs = await Promise.all(Array.from({ length: 50 }, () => engine.history.history('room', { ...q, since })));
      for (const r of rs) {
        assert.deepEqual(
          r.publications.map((p) => p.offset),
          [5, 6, 7, 8, 9, 10],
        );
        assert.deepEqual(r.position, top.position);
      }
    } finally {
      await engine.close();
    }
  });
});
