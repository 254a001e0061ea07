// The nothing-lost checker must catch what it exists to catch; these cases feed it hand-built histories.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check, eitherOf, newEpochOnly, storeLost, type Ack, type Bound } from './support/checker.js';
import type { SubEvent } from './support/clients.js';

const sub = (e: string, o: number): SubEvent => ({
  type: 'subscribed',
  wasRecovering: false,
  recovered: false,
  epoch: e,
  offset: o,
  at: 0,
});
const resub = (e: string, o: number, recovered: boolean, at = 0): SubEvent => ({
  type: 'subscribed',
  wasRecovering: true,
  recovered,
  epoch: e,
  offset: o,
  at,
});
const pub = (o: number): SubEvent => ({ type: 'pub', offset: o, id: `m${o}`, at: 0 });
const acks = (e: string, ...offsets: number[]): Ack[] =>
  offsets.map((o) => ({ channel: 'c', id: `m${o}`, epoch: e, offset: o, sentAt: 0, at: 0 }));
/** Acknowledged publications sent at `t` and answered at `t + 1`. */
const ackedAt = (t: number, e: string, ...offsets: number[]): Ack[] =>
  acks(e, ...offsets).map((a) => ({ ...a, sentAt: t, at: t + 1 }));
/** Any recovered:false at any time may excuse any acknowledged publication: the old, unbounded checker. */
const anything: Bound = { what: 'anything', told: () => true, excuses: () => true };
const one = (events: SubEvent[]) => [{ user: 'u', channel: 'c', events }];

test('the checker passes a contiguous history that holds every acknowledged publication', () => {
  const r = check(acks('E', 3, 4, 5), one([sub('E', 2), pub(3), pub(4), pub(5)]), 'none');
  assert.deepEqual([r.expected, r.delivered, r.lost, r.duplicated, r.gaps], [3, 3, 0, 0, 0]);
});

test('the checker counts an acknowledged publication that never arrived as lost and a skipped offset as a silent gap', () => {
  const r = check(acks('E', 1, 2, 3), one([sub('E', 0), pub(1), pub(3)]), 'none');
  assert.equal(r.lost, 1);
  assert.equal(r.gaps, 1);
  assert.match(r.problems.join('\n'), /E:2/);
});

test('the checker counts a publication delivered twice as duplicated', () => {
  const r = check(acks('E', 1, 2), one([sub('E', 0), pub(1), pub(2), resub('E', 2, true), pub(2)]), 'none');
  assert.equal(r.duplicated, 1);
});

test('the checker accepts a loss only where recovered: false declared it', () => {
  const events = [sub('E', 0), pub(1), resub('F', 2, false), pub(3)];
  const ok = check([...acks('E', 1, 2), ...acks('F', 1, 2, 3)], one(events), anything);
  assert.equal(ok.lost, 0);
  assert.equal(ok.toldLost, 3);
  const late = check([...acks('E', 1), ...acks('F', 1, 2, 3, 4)], one(events), anything);
  assert.equal(late.lost, 1, 'F:4 came after the declaration and is lost');
});

test('the checker ignores acknowledged publications from before the subscriber started', () => {
  const r = check(acks('E', 1, 2, 3), one([sub('E', 2), pub(3)]), 'none');
  assert.equal(r.expected, 1);
  assert.equal(r.lost, 0);
});

test('the checker counts an acknowledged publication as lost when another publication arrived at its position (a failover reused it)', () => {
  const other: SubEvent = { type: 'pub', offset: 2, id: 'someone-else', at: 0 };
  const r = check(acks('e', 1, 2, 3), one([sub('e', 0), pub(1), other, pub(3)]), 'none');
  assert.equal(r.lost, 1);
  assert.equal(r.delivered, 3);
  assert.match(r.problems.join('\n'), /acknowledged e:2 \(id m2\) but someone-else arrived at that position/);
});

test('the checker counts publications at reused positions as told once recovered: false follows, since it voids the old epoch', () => {
  const other: SubEvent = { type: 'pub', offset: 2, id: 'someone-else', at: 0 };
  const r = check(
    [...acks('e', 1, 2, 3), ...acks('f', 4)],
    one([sub('e', 0), pub(1), other, resub('f', 3, false), pub(4)]),
    anything,
  );
  assert.equal(r.lost, 0);
  assert.equal(r.toldLost, 2, 'e:2 (another arrived there) and e:3 (never arrived)');
});

test('the checker counts an acknowledged publication excused by recovered: false as lost when the scenario allows none', () => {
  const r = check(acks('E', 1, 2, 3), one([sub('E', 0), pub(1), resub('F', 0, false, 50), pub(1)]), 'none');
  assert.equal(r.lost, 2, 'E:2 and E:3 were excused by a recovered:false the fault may not cause');
  assert.equal(r.toldBeyond, 2);
  assert.equal(r.toldLost, 0);
  assert.equal(r.toldOutside.length, 1);
  assert.match(r.problems.join('\n'), /told recovered:false at F:0 \(left E\) outside the bound \(none allowed\)/);
  assert.match(
    r.problems.join('\n'),
    /acknowledged E:2 \(id m2, .*\) was excused by recovered:false beyond the bound \(none allowed\)/,
  );
});

test('the checker reports a recovered: false under a bound of none even when it excuses no acknowledged publication', () => {
  const r = check(acks('E', 1), one([sub('E', 0), pub(1), resub('F', 0, false, 50)]), 'none');
  assert.equal(r.lost, 0);
  assert.equal(r.toldOutside.length, 1);
  assert.equal(r.problems.length, 1);
});

test('after a store lost everything, the checker excuses only publications acknowledged from the start of the loss window and those of the new epoch sent before the client was told', () => {
  const bound = storeLost({ what: 'restarted empty at 100', from: 100, until: 500, lostFrom: 90 });
  // E:2 acked at 81 (long before the fault), E:3 at 96 (inside the window before it), F:1 sent at 200 before the
  // subscriber was told at 300, F:2 published after.
  const events = [
    sub('E', 0),
    pub(1),
    resub('F', 1, false, 300),
    { type: 'pub', offset: 2, id: 'm2', at: 0 } as SubEvent,
  ];
  const all = [
    ...ackedAt(0, 'E', 1),
    ...ackedAt(80, 'E', 2),
    ...ackedAt(95, 'E', 3),
    ...ackedAt(200, 'F', 1),
    ...ackedAt(301, 'F', 2),
  ];
  const r = check(all, one(events), bound);
  assert.equal(r.toldLost, 2, 'E:3 and F:1');
  assert.equal(r.toldBeyond, 1, 'E:2 was acknowledged before the window: its loss is not excused');
  assert.equal(r.lost, 1);
  assert.match(r.problems.join('\n'), /acknowledged E:2 \(id m2.*beyond the bound \(restarted empty at 100\)/);
  const inside = check(
    all.filter((a) => !(a.epoch === 'E' && a.offset === 2)),
    one([
      sub('E', 0),
      pub(1),
      { type: 'pub', offset: 2, id: 'm2', at: 0 },
      resub('F', 1, false, 300),
      { type: 'pub', offset: 2, id: 'm2', at: 0 },
    ]),
    bound,
  );
  assert.deepEqual([inside.lost, inside.toldLost, inside.toldBeyond, inside.problems], [0, 2, 0, []]);
});

test('the checker counts a recovered: false outside the bound, in time or on another channel, as beyond it', () => {
  const bound = storeLost({ what: 'window 100-200 on channel d', channels: ['d'], from: 100, until: 200, lostFrom: 0 });
  const late = check(
    ackedAt(150, 'E', 1, 2),
    one([sub('E', 0), pub(1), resub('F', 0, false, 250)]),
    storeLost({ what: 'window 100-200', channels: ['c'], from: 100, until: 200, lostFrom: 0 }),
  );
  assert.equal(late.toldOutside.length, 1, 'told at 250, after the window');
  assert.equal(late.lost, 1);
  const elsewhere = check(ackedAt(150, 'E', 1, 2), one([sub('E', 0), pub(1), resub('F', 0, false, 150)]), bound);
  assert.equal(elsewhere.toldOutside.length, 1, 'channel c may not be told');
  assert.equal(elsewhere.toldBeyond, 1);
});

test('after a failover the checker excuses only offsets above what the new primary kept', () => {
  const bound = storeLost({
    what: 'kept E:3',
    from: 0,
    until: 1000,
    kept: new Map([['c', { epoch: 'E', offset: 3 }]]),
  });
  const lostFour = check(
    ackedAt(10, 'E', 1, 2, 3, 4, 5),
    one([sub('E', 0), pub(1), pub(2), pub(3), resub('F', 5, false, 500)]),
    bound,
  );
  assert.deepEqual(
    [lostFour.lost, lostFour.toldLost, lostFour.toldBeyond],
    [0, 2, 0],
    'E:4 and E:5 were not replicated',
  );
  const lostTwo = check(ackedAt(10, 'E', 1, 2, 3, 4), one([sub('E', 0), pub(1), resub('F', 5, false, 500)]), bound);
  assert.deepEqual(
    [lostTwo.lost, lostTwo.toldBeyond, lostTwo.toldLost],
    [2, 2, 1],
    'E:2 and E:3 were on the new primary: their loss is beyond the bound',
  );
});

test('with only new-epoch losses allowed, the checker counts an acknowledged publication of the epoch the client left as beyond the bound', () => {
  const bound = newEpochOnly({ what: 'rewind of unacknowledged publications', from: 0, until: 1000 });
  const ok = check(
    [...ackedAt(10, 'E', 1), ...ackedAt(20, 'F', 3)],
    one([sub('E', 0), pub(1), resub('F', 3, false, 30)]),
    bound,
  );
  assert.deepEqual([ok.lost, ok.toldLost, ok.toldOutside.length], [0, 1, 0]);
  const bad = check(ackedAt(10, 'E', 1, 2), one([sub('E', 0), pub(1), resub('F', 3, false, 30)]), bound);
  assert.deepEqual([bad.lost, bad.toldBeyond], [1, 1]);
});

test('with several faults in one run, the checker holds each recovered: false to the bound of the fault whose window it falls in', () => {
  const bound = eitherOf([
    storeLost({ what: 'restart 1', from: 100, until: 200, lostFrom: 90 }),
    storeLost({ what: 'restart 2', from: 500, until: 600, lostFrom: 490 }),
  ]);
  const second = check(ackedAt(495, 'E', 1, 2), one([sub('E', 0), pub(1), resub('F', 0, false, 550)]), bound);
  assert.deepEqual([second.lost, second.toldLost, second.toldOutside.length], [0, 1, 0]);
  const between = check(ackedAt(300, 'E', 1, 2), one([sub('E', 0), pub(1), resub('F', 0, false, 350)]), bound);
  assert.deepEqual(
    [between.lost, between.toldBeyond, between.toldOutside.length],
    [1, 1, 1],
    'told between the two restarts',
  );
  const stale = check(ackedAt(95, 'E', 1, 2), one([sub('E', 0), pub(1), resub('F', 0, false, 550)]), bound);
  assert.deepEqual(
    [stale.lost, stale.toldBeyond],
    [1, 1],
    'E:2 was acknowledged before the second window: only the first could excuse it, and that one did not tell',
  );
});
