// The end of every fault scenario: the publisher got only successes or temporary refusals, and once subscribers
// caught up, the checker finds nothing lost, duplicated or skipped. Prints the checker's line.
import assert from 'node:assert/strict';
import { check, type CheckResult } from './checker.js';
import type { TrackedSub } from './clients.js';
import type { PublisherStats } from './publisher.js';
import { waitFor } from './util.js';

export async function expectNothingLost(label: string, stats: PublisherStats, subs: TrackedSub[], opts: { note?: string; onProblems?: () => void } = {}): Promise<CheckResult> {
  assert.deepEqual(stats.other, [], 'every answer was a success or a temporary refusal');
  // Wait until every subscriber holds every acknowledged publication of its channel, or was told it lost it.
  await waitFor(() => {
    const r = check(stats.acks, subs);
    return r.lost === 0 && r.problems.length === 0;
  }, 'subscribers to catch up', 20_000).catch(() => {});
  const result = check(stats.acks, subs);
  console.log(`# ${label}: ${result.line}; refused ${stats.refused}, unanswered ${stats.unanswered}${opts.note ? `; ${opts.note}` : ''}`);
  if (result.problems.length > 0) opts.onProblems?.();
  assert.deepEqual(result.problems, []);
  assert.equal(result.lost, 0);
  assert.equal(result.duplicated, 0);
  assert.equal(result.gaps, 0);
  return result;
}
