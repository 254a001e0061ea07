import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryHistory } from '../src/engine/memory/history.js';

const q = { historySize: 3, historyTtlMs: 1000, historyMetaTtlMs: 60_000 };

test('appends get consecutive offsets and the stream keeps at most history_size publications', async () => {
  const h = new MemoryHistory();
  for (let i = 1; i <= 5; i++) h.append('c', { data: String(i) }, 3, 1000, 60_000);
  const r = await h.history('c', { ...q, limit: -1 });
  assert.deepEqual(
    r.publications.map((p) => p.offset),
    [3, 4, 5],
  );
  assert.equal(r.position.offset, 5);
  const since = await h.history('c', { ...q, limit: -1, since: { offset: 1, epoch: r.position.epoch } });
  // Offset 2 fell out of history: the set is incomplete, which recovery detects by counting.
  assert.equal(since.publications.length, 3);
  assert.notEqual(since.publications.length, r.position.offset - 1);
});

test('publications expire after history_ttl while the epoch and top offset stay', async () => {
  let now = 1_000_000;
  const h = new MemoryHistory(() => now);
  h.append('c', { data: '1' }, 3, 1000, 60_000);
  const before = await h.history('c', { ...q, limit: -1 });
  now += 1500;
  const after = await h.history('c', { ...q, limit: -1 });
  assert.equal(after.publications.length, 0);
  assert.deepEqual(after.position, before.position);
});

test('the stream gets a new epoch once its meta expires', async () => {
  let now = 1_000_000;
  const h = new MemoryHistory(() => now);
  h.append('c', { data: '1' }, 3, 1000, 5000);
  const first = await h.history('c', { ...q, limit: 0, historyMetaTtlMs: 5000 });
  now += 10_000;
  const second = await h.history('c', { ...q, limit: 0, historyMetaTtlMs: 5000 });
  assert.notEqual(first.position.epoch, second.position.epoch);
  assert.equal(second.position.offset, 0);
});

test('reading a channel with no stream yet creates its epoch, kept by later appends', async () => {
  const h = new MemoryHistory();
  const r = await h.history('fresh', { ...q, limit: 0 });
  const pub = h.append('fresh', { data: '1' }, 3, 1000, 60_000);
  assert.equal(pub.epoch, r.position.epoch);
  assert.equal(pub.offset, 1);
});

test('a full stream trimmed on every append keeps exactly its last history_size publications, read whole, from a position, reversed and limited', async () => {
  let now = 1_000_000;
  const h = new MemoryHistory(() => now);
  const size = 100;
  const opts = { historySize: size, historyTtlMs: 600_000, historyMetaTtlMs: 600_000 };
  for (let n = 1; n <= 1000; n++) {
    h.append('c', { data: String(n) }, size, 600_000, 600_000);
    // Checked at every step across the points where dropped entries are cut off the arrays.
    if (n % 7 === 0 || n === 1000) {
      const r = await h.history('c', { ...opts, limit: -1 });
      const first = Math.max(1, n - size + 1);
      assert.deepEqual(
        r.publications.map((p) => p.offset),
        Array.from({ length: n - first + 1 }, (_, i) => first + i),
        `after ${n} appends`,
      );
      assert.deepEqual(
        r.publications.map((p) => p.data),
        r.publications.map((p) => String(p.offset)),
      );
    }
  }
  const epoch = (await h.history('c', { ...opts, limit: 0 })).position.epoch;
  const since = await h.history('c', { ...opts, limit: -1, since: { offset: 950, epoch } });
  assert.deepEqual(
    since.publications.map((p) => p.offset),
    Array.from({ length: 50 }, (_, i) => 951 + i),
  );
  const fromBefore = await h.history('c', { ...opts, limit: -1, since: { offset: 10, epoch } });
  assert.equal(fromBefore.publications[0]?.offset, 901, 'a position older than history starts at its first');
  const reversed = await h.history('c', { ...opts, limit: 3, reverse: true });
  assert.deepEqual(
    reversed.publications.map((p) => p.offset),
    [1000, 999, 998],
  );
  // Expiry drops from the front too: the last 10 appended later survive the first ones' TTL.
  now += 1000;
  for (let n = 1001; n <= 1010; n++) h.append('c', { data: String(n) }, size, 600_000, 600_000);
  now += 600_000 - 500;
  const expired = await h.history('c', { ...opts, limit: -1 });
  assert.deepEqual(
    expired.publications.map((p) => p.offset),
    Array.from({ length: 10 }, (_, i) => 1001 + i),
  );
});
