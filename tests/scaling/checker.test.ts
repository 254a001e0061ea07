// The nothing-lost checker must catch what it exists to catch; these cases feed it hand-built histories.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check, type Ack } from './support/checker.js';
import type { SubEvent } from './support/clients.js';

const sub = (e: string, o: number): SubEvent => ({ type: 'subscribed', wasRecovering: false, recovered: false, epoch: e, offset: o, at: 0 });
const resub = (e: string, o: number, recovered: boolean): SubEvent => ({ type: 'subscribed', wasRecovering: true, recovered, epoch: e, offset: o, at: 0 });
const pub = (o: number): SubEvent => ({ type: 'pub', offset: o, id: `m${o}`, at: 0 });
const acks = (e: string, ...offsets: number[]): Ack[] => offsets.map((o) => ({ channel: 'c', id: `m${o}`, epoch: e, offset: o }));
const one = (events: SubEvent[]) => [{ user: 'u', channel: 'c', events }];

test('the checker passes a contiguous history that holds every acknowledged publication', () => {
  const r = check(acks('E', 3, 4, 5), one([sub('E', 2), pub(3), pub(4), pub(5)]));
  assert.deepEqual([r.expected, r.delivered, r.lost, r.duplicated, r.gaps], [3, 3, 0, 0, 0]);
});

test('the checker counts an acknowledged publication that never arrived as lost and a skipped offset as a silent gap', () => {
  const r = check(acks('E', 1, 2, 3), one([sub('E', 0), pub(1), pub(3)]));
  assert.equal(r.lost, 1);
  assert.equal(r.gaps, 1);
  assert.match(r.problems.join('\n'), /E:2/);
});

test('the checker counts a publication delivered twice as duplicated', () => {
  const r = check(acks('E', 1, 2), one([sub('E', 0), pub(1), pub(2), resub('E', 2, true), pub(2)]));
  assert.equal(r.duplicated, 1);
});

test('the checker accepts a loss only where recovered: false declared it', () => {
  const events = [sub('E', 0), pub(1), resub('F', 2, false), pub(3)];
  const ok = check([...acks('E', 1, 2), ...acks('F', 1, 2, 3)], one(events));
  assert.equal(ok.lost, 0);
  assert.equal(ok.toldLost, 3);
  const late = check([...acks('E', 1), ...acks('F', 1, 2, 3, 4)], one(events));
  assert.equal(late.lost, 1, 'F:4 came after the declaration and is lost');
});

test('the checker ignores acknowledged publications from before the subscriber started', () => {
  const r = check(acks('E', 1, 2, 3), one([sub('E', 2), pub(3)]));
  assert.equal(r.expected, 1);
  assert.equal(r.lost, 0);
});

test('the checker counts an acknowledged publication as lost when another publication arrived at its position (a failover reused it)', () => {
  const other: SubEvent = { type: 'pub', offset: 2, id: 'someone-else', at: 0 };
  const r = check(acks('e', 1, 2, 3), one([sub('e', 0), pub(1), other, pub(3)]));
  assert.equal(r.lost, 1);
  assert.equal(r.delivered, 3);
  assert.match(r.problems.join('\n'), /acknowledged e:2 \(id m2\) but someone-else arrived at that position/);
});

test('the checker counts publications at reused positions as told once recovered: false follows, since it voids the old epoch', () => {
  const other: SubEvent = { type: 'pub', offset: 2, id: 'someone-else', at: 0 };
  const r = check([...acks('e', 1, 2, 3), ...acks('f', 4)], one([sub('e', 0), pub(1), other, resub('f', 3, false), pub(4)]));
  assert.equal(r.lost, 0);
  assert.equal(r.toldLost, 2, 'e:2 (another arrived there) and e:3 (never arrived)');
});
