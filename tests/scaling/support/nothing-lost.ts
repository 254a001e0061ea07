// The end of every fault scenario: the publisher got only successes, temporary refusals (counted, and required
// where the docs promise them) and at most the allowed number of unanswered requests; once subscribers caught up,
// the checker finds nothing lost, duplicated or skipped, and no `recovered: false` beyond the scenario's bound.
// Prints the checker's line.
import assert from 'node:assert/strict';
import { check, type CheckResult, type Excused } from './checker.js';
import type { TrackedSub } from './clients.js';
import type { PublisherStats } from './publisher.js';
import { waitFor } from './util.js';

export interface Expectations {
  /** Which `recovered: false` this fault may cause and which acknowledged publications they may excuse. */
  excused: Excused;
  /**
   * Publishes refused with 503 / error 100: 'some' where the docs promise refusals during the fault (at least one,
   * and with `refusedWithin` every one inside that window of Date.now() times, or one of those windows), 0 where
   * nothing may be refused.
   */
  refused: 'some' | 0;
  refusedWithin?: { from: number; until: number } | { from: number; until: number }[];
  /** When given, only publishes to these channels may be refused (a fault of one shard). */
  refusedOnly?: string[];
  /** Publishes that got no answer at all: at most the requests in flight on a connection the fault dropped. */
  maxUnanswered: number;
  /** Date.now() when the fault began: the printed line gives the told times relative to it. */
  faultAt?: number;
  note?: string;
  onProblems?: () => void;
}

export async function expectNothingLost(
  label: string,
  stats: PublisherStats,
  subs: TrackedSub[],
  expect: Expectations,
): Promise<CheckResult> {
  assert.deepEqual(stats.other, [], 'every answer was a success or a temporary refusal');
  // Wait until every subscriber holds every acknowledged publication of its channel, or was told it lost it.
  await waitFor(
    () => {
      const r = check(stats.acks, subs, expect.excused);
      return r.lost === 0 && r.problems.length === 0;
    },
    'subscribers to catch up',
    20_000,
  ).catch(() => {});
  const result = check(stats.acks, subs, expect.excused);
  const bound = expect.excused === 'none' ? 'none allowed' : expect.excused.what;
  const t0 = expect.faultAt;
  const span = (ts: number[]) =>
    ts.length === 0 ? 'none' : `${Math.min(...ts) - t0!} to ${Math.max(...ts) - t0!} ms after the fault began`;
  const left = result.excused.filter((x) => x.told && x.ack.epoch === x.told.left).map((x) => x.ack.at);
  const times =
    t0 === undefined
      ? ''
      : `; told ${span(result.told.map((t) => t.at))}; refused ${span(stats.refusals.map((r) => r.at))}; excused of the epoch left ${left.length} (acked ${span(left)})`;
  console.log(
    `# ${label}: ${result.line}; bound: ${bound}; refused ${stats.refused}, unanswered ${stats.unanswered}${times}${expect.note ? `; ${expect.note}` : ''}`,
  );
  if (result.problems.length > 0) expect.onProblems?.();
  assert.deepEqual(result.problems, []);
  assert.equal(result.lost, 0);
  assert.equal(result.duplicated, 0);
  assert.equal(result.gaps, 0);
  assert.equal(result.toldBeyond, 0, `no acknowledged publication excused beyond the bound (${bound})`);
  assert.deepEqual(result.toldOutside, [], `no recovered:false outside the bound (${bound})`);
  if (expect.refused === 'some')
    assert.ok(stats.refused > 0, 'publishes during the fault were refused with 503 / error 100');
  else assert.equal(stats.refused, 0, 'no publish was refused');
  if (expect.refusedWithin) {
    const windows = [expect.refusedWithin].flat();
    const outside = stats.refusals
      .filter((r) => !windows.some((w) => r.at >= w.from && r.at <= w.until))
      .map((r) => new Date(r.at).toISOString());
    assert.deepEqual(
      outside,
      [],
      `every refusal was answered during a fault (${windows.map((w) => `${new Date(w.from).toISOString()} + ${w.until - w.from} ms`).join(', ')})`,
    );
  }
  if (expect.refusedOnly) {
    const elsewhere = stats.refusals.filter((r) => !expect.refusedOnly!.includes(r.channel));
    assert.deepEqual(elsewhere, [], `only publishes to ${expect.refusedOnly.join(', ')} were refused`);
  }
  assert.ok(
    stats.unanswered <= expect.maxUnanswered,
    `at most ${expect.maxUnanswered} publishes unanswered (got ${stats.unanswered}: ${JSON.stringify(stats.unansweredAt)})`,
  );
  return result;
}
