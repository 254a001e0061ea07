// The "nothing lost" checker. Publishers record every publication that got a success answer with the position
// the server acknowledged; subscribers record what they saw (see clients.ts). For every subscriber and channel it
// checks that offsets are contiguous with no duplicates, except across a `recovered: false`, which declares exactly
// the positions the subscriber lost; and that every acknowledged publication after the subscriber's start reached it
// unless such a declaration covers it.
import type { SubEvent, TrackedSub } from './clients.js';

export interface Ack {
  channel: string;
  id: string;
  epoch: string;
  offset: number;
}

export interface CheckResult {
  acked: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  /** Offsets skipped without a `recovered: false` (a silent gap, even of an unacknowledged publication). */
  gaps: number;
  /** Deliveries covered by a `recovered: false` (the client was told). */
  toldLost: number;
  /** Human-readable findings, at most a few per subscriber. */
  problems: string[];
  line: string;
}

const key = (epoch: string, offset: number) => `${epoch}:${offset}`;

export function check(acks: Ack[], subs: Pick<TrackedSub, 'user' | 'channel' | 'events'>[]): CheckResult {
  const byChannel = new Map<string, Ack[]>();
  for (const a of acks) {
    let l = byChannel.get(a.channel);
    if (!l) byChannel.set(a.channel, (l = []));
    l.push(a);
  }
  let expected = 0, delivered = 0, lost = 0, duplicated = 0, toldLost = 0, gaps = 0;
  const problems: string[] = [];
  for (const s of subs) {
    const mine: string[] = [];
    const note = (p: string) => {
      if (mine.length < 5) mine.push(`${s.user}@${s.channel}: ${p}`);
    };
    /** position -> the id delivered there: an acknowledgement counts only if its own publication arrived there. */
    const seen = new Map<string, string>();
    /** Declared losses: epoch -> offset ranges (lo, hi] the subscriber was told it lost. */
    const declared: { epoch: string; lo: number; hi: number }[] = [];
    let epoch = '';
    let offset = -1;
    let startEpoch = '';
    let startOffset = 0;
    for (const e of s.events as SubEvent[]) {
      if (e.type === 'subscribed') {
        if (offset < 0) {
          epoch = startEpoch = e.epoch;
          offset = startOffset = e.offset;
        } else if (e.wasRecovering && !e.recovered) {
          // Told: its view of the old epoch is void (what it lacks there, including positions a failover reused),
          // and it has nothing of the new epoch up to the new position. Silent gaps are still counted as gaps.
          declared.push({ epoch, lo: 0, hi: Number.MAX_SAFE_INTEGER });
          if (e.epoch === epoch) declared[declared.length - 1]!.hi = e.offset;
          else declared.push({ epoch: e.epoch, lo: 0, hi: e.offset });
          epoch = e.epoch;
          offset = e.offset;
        } else if (!e.wasRecovering) {
          note(`resubscribed without recovery at ${e.epoch}:${e.offset} (cannot vouch for the gap)`);
          declared.push({ epoch, lo: offset, hi: Number.MAX_SAFE_INTEGER });
          epoch = e.epoch;
          offset = e.offset;
        }
        continue;
      }
      delivered++;
      const k = key(epoch, e.offset);
      if (seen.has(k)) {
        duplicated++;
        note(`duplicate offset ${e.offset} (id ${e.id})`);
        continue;
      }
      seen.set(k, e.id);
      if (e.offset !== offset + 1) gaps++;
      if (e.offset !== offset + 1) note(`offset jumped from ${offset} to ${e.offset} without recovered:false`);
      offset = e.offset;
    }
    for (const a of byChannel.get(s.channel) ?? []) {
      if (a.epoch === startEpoch && a.offset <= startOffset) continue; // before this subscriber started
      expected++;
      const there = seen.get(key(a.epoch, a.offset));
      if (there === a.id) continue;
      if (declared.some((d) => d.epoch === a.epoch && a.offset > d.lo && a.offset <= d.hi)) {
        toldLost++;
        continue;
      }
      lost++;
      // A different publication at the acknowledged position: the stream reused it (a failover lost what was there).
      if (there !== undefined) note(`acknowledged ${a.epoch}:${a.offset} (id ${a.id}) but ${there} arrived at that position`);
      else note(`acknowledged ${a.epoch}:${a.offset} (id ${a.id}) never arrived and no recovered:false covers it`);
    }
    problems.push(...mine);
  }
  const line = `publications acked ${acks.length}, deliveries expected ${expected}, delivered ${delivered}, lost ${lost}, duplicated ${duplicated}, silent gaps ${gaps} (told recovered:false for ${toldLost})`;
  return { acked: acks.length, expected, delivered, lost, duplicated, gaps, toldLost, problems, line };
}
