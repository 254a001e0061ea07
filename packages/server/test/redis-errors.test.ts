import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { Engine } from '../src/engine/engine.js';
import { createRedisEngine } from '../src/engine/redis/index.js';
import { HeraldError } from '../src/protocol/codes.js';
import { redisTestEngine } from './support/engines.js';
import { waitFor } from './support/herald.js';

/**
 * Redis failures are classified at the engine boundary: a reply refusing the request's arguments is permanent
 * (HeraldError 107, temporary: false: retrying fails the same way), everything about the server's state
 * (down, not answering, READONLY, ...) is temporary (100). The outbox retries the one and dead-letters the other.
 */

const hq = { historySize: 10, historyTtlMs: 60_000, historyMetaTtlMs: 3_600_000 };
let seq = 0;
const uniq = (name: string) => `errors-${process.pid}-${Date.now()}-${++seq}-${name}`;

async function rejection(p: Promise<unknown>): Promise<HeraldError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof HeraldError, `a HeraldError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('Redis errors about the request are permanent', { timeout: 30_000 }, () => {
  let engine: Engine;
  before(async () => {
    engine = await redisTestEngine();
  });
  after(() => engine.close());

  test('a history read from an offset Redis cannot take as a stream ID (1e300) fails with error 107, not temporary', async () => {
    const ch = uniq('hist');
    const first = await engine.broker.publish(ch, { data: '1' }, { historySize: 10, historyTtlMs: 60_000 });
    const err = await rejection(
      engine.history.history(ch, { since: { offset: 1e300, epoch: first.epoch }, limit: -1, ...hq }),
    );
    assert.equal(err.code, 107);
    assert.equal(err.temporary, false);
    assert.deepEqual(err.toReply(), { code: 107, message: err.message });
    assert.match(err.message, /history refused by Redis \(ERR Invalid stream ID.*retrying it will fail the same way/);
    // The engine is still fine for a valid read.
    const ok = await engine.history.history(ch, { since: { offset: 0, epoch: first.epoch }, limit: -1, ...hq });
    assert.deepEqual(
      ok.publications.map((p) => p.data),
      ['1'],
    );
  });

  test('a publish with a history size Redis would refuse half-way (2.5) fails with error 107 and stores nothing', async () => {
    const ch = uniq('pub');
    const first = await engine.broker.publish(ch, { data: '1' }, { historySize: 10, historyTtlMs: 60_000 });
    const err = await rejection(engine.broker.publish(ch, { data: '2' }, { historySize: 2.5, historyTtlMs: 60_000 }));
    assert.equal(err.code, 107);
    assert.equal(err.temporary, false);
    assert.match(err.message, /publish refused, nothing stored: history size 2.5 is not an integer/);
    const after = await engine.broker.publish(ch, { data: '3' }, { historySize: 10, historyTtlMs: 60_000 });
    assert.deepEqual(after, { offset: 2, epoch: first.epoch }, 'the refused publish took no offset');
  });
});

describe('Redis errors about the server are temporary', { timeout: 30_000 }, () => {
  test('a publish while nothing listens at REDIS_URL fails with error 100, temporary', async () => {
    const engine = createRedisEngine({
      url: `redis://127.0.0.1:${await freePort()}`,
      prefix: uniq('down'),
      commandTimeoutMs: 1000,
    });
    try {
      const err = await rejection(
        engine.broker.publish(uniq('c'), { data: '1' }, { historySize: 10, historyTtlMs: 60_000 }),
      );
      assert.equal(err.code, 100);
      assert.equal(err.temporary, true);
      assert.match(err.message, /not connected to Redis/);
    } finally {
      await engine.close();
    }
  });

  test('a READONLY reply (a replica, as a demoted primary answers) fails with error 100, temporary', async () => {
    assert.equal(spawnSync('redis-server', ['--version']).status, 0, 'redis-server is installed');
    const port = await freePort();
    // A replica of a primary that does not exist: it answers reads and refuses every write with READONLY.
    const replica: ChildProcess = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--replicaof',
        '127.0.0.1',
        String(await freePort()),
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    );
    const engine = createRedisEngine({ url: `redis://127.0.0.1:${port}`, prefix: uniq('ro'), commandTimeoutMs: 1000 });
    try {
      const errors: HeraldError[] = [];
      // Until its commands connection is up the publish fails as 'not connected'; then READONLY answers it.
      await waitFor(
        async () => {
          const err = await rejection(
            engine.broker.publish(uniq('c'), { data: '1' }, { historySize: 10, historyTtlMs: 60_000 }),
          );
          errors.push(err);
          return /READONLY/.test(err.message);
        },
        'a READONLY answer',
        10_000,
      );
      const readonly = errors.at(-1)!;
      assert.equal(readonly.code, 100);
      assert.equal(readonly.temporary, true);
      assert.ok(
        errors.every((e) => e.code === 100 && e.temporary),
        'every failure on the way was temporary',
      );
    } finally {
      await engine.close();
      const exited = once(replica, 'exit');
      replica.kill('SIGKILL');
      await exited;
    }
  });
});
