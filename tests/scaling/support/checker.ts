// The "nothing lost" checker. Publishers record every publication that got a success answer with the position
// the server acknowledged; subscribers record what they saw (see clients.ts). For every subscriber and channel it
// checks that offsets are contiguous with no duplicates, except across a `recovered: false`, which declares the
// positions the subscriber lost; and that every acknowledged publication after the subscriber's start reached it
// unless such a declaration covers it AND the scenario's bound allows that excuse. The bound is a required argument:
// a fault that must not lose anything acknowledged ('none') cannot pass by telling every client `recovered: false`.
import type { SubEvent, TrackedSub } from './clients.js';

export interface Ack {
  channel: string;
  id: string;
  epoch: string;
  offset: number;
  /** Date.now() when the publish request was sent. */
  sentAt: number;
  /** Date.now() when its success answer arrived. */
  at: number;
}

/** One `recovered: false` a subscriber was told. */
export interface Told {
  user: string;
  channel: string;
  /** Date.now() when the subscriber saw it. */
  at: number;
  /** The epoch it left (its view of it is void) and the position it was given. */
  left: string;
  epoch: string;
  offset: number;
}

/**
 * Which `recovered: false` a scenario allows, and which acknowledged publications such a declaration may excuse.
 * - 'none': no subscriber may be told `recovered: false`, so every acknowledged publication must arrive.
 * - a Bound: a subscriber may be told only where `told` accepts it (which channels, when); an acknowledged
 *   publication it did not receive is excused only if `excuses` says so (absent: none is). A declaration outside
 *   the bound is reported (`toldOutside`), an excuse beyond it counts as lost (`toldBeyond`).
 */
export type Excused = 'none' | Bound;

export interface Bound {
  /** For the checker's line and its problems, e.g. "acked from 1 s before the restart". */
  what: string;
  told: (t: Told) => boolean;
  excuses?: (a: Ack, told: Told) => boolean;
}

/** Told on `channels` (all when absent) between `from` and `until` (Date.now() times). */
const toldWithin = (channels: string[] | undefined, from: number, until: number) => (t: Told) =>
  (channels?.includes(t.channel) ?? true) && t.at >= from && t.at <= until;

/**
 * The publications a store that came back without them (restarted empty, failed over, rewound) could not keep:
 * of the epoch the subscriber left, those at offsets above what the store kept (`kept`: per channel, the epoch and
 * the top offset the store still had; without an entry, those acknowledged at or after `lostFrom`); of the epoch it
 * moved to, those sent before it was told (they precede the position it was given). Told on `channels` (all when
 * absent) only from `from` to `until`.
 */
export function storeLost(opts: {
  what: string;
  channels?: string[];
  from: number;
  until: number;
  kept?: Map<string, { epoch: string; offset: number }>;
  lostFrom?: number;
}): Bound {
  return {
    what: opts.what,
    told: toldWithin(opts.channels, opts.from, opts.until),
    excuses(a, told) {
      if (a.epoch === told.epoch && a.epoch !== told.left) return a.sentAt <= told.at && a.offset <= told.offset;
      if (a.epoch !== told.left) return false;
      const kept = opts.kept?.get(a.channel);
      if (kept) return a.epoch === kept.epoch && a.offset > kept.offset;
      return opts.lostFrom !== undefined && a.at >= opts.lostFrom;
    },
  };
}

/**
 * Subscribers may be told `recovered: false` (a rewind of publications that were never acknowledged makes the
 * nodes rotate the epoch), but of what was acknowledged they may miss only publications of the new epoch sent
 * before they were told (they precede the position they were given); nothing of the epoch they left.
 */
export function newEpochOnly(opts: { what: string; channels?: string[]; from: number; until: number }): Bound {
  return storeLost({ ...opts, lostFrom: Number.POSITIVE_INFINITY });
}

/** Several faults in one run: a declaration is within the bound of the fault whose window it falls in. */
export function eitherOf(bounds: Bound[]): Bound {
  return {
    what: bounds.map((b) => b.what).join('; '),
    told: (t) => bounds.some((b) => b.told(t)),
    excuses: (a, t) => bounds.some((b) => b.told(t) && (b.excuses?.(a, t) ?? false)),
  };
}

export interface CheckResult {
  acked: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  /** Offsets skipped without a `recovered: false` (a silent gap, even of an unacknowledged publication). */
  gaps: number;
  /** Acknowledged publications not delivered, covered by a `recovered: false` the bound allows (the client was told). */
  toldLost: number;
  /** Those excused deliveries: the publication and the `recovered: false` that covers it. */
  excused: { ack: Ack; told?: Told }[];
  /** Acknowledged publications covered by a `recovered: false` but beyond the bound (also counted in `lost`). */
  toldBeyond: number;
  /** Every `recovered: false` a subscriber was told. */
  told: Told[];
  /** `recovered: false` outside the bound (who, when): a scenario that allows none lists every one here. */
  toldOutside: Told[];
  /** Human-readable findings, at most a few per subscriber. */
  problems: string[];
  line: string;
}

const key = (epoch: string, offset: number) => `${epoch}:${offset}`;

export function check(
  acks: Ack[],
  subs: Pick<TrackedSub, 'user' | 'channel' | 'events'>[],
  allowed: Excused,
): CheckResult {
  const byChannel = new Map<string, Ack[]>();
  for (const a of acks) {
    let l = byChannel.get(a.channel);
    if (!l) byChannel.set(a.channel, (l = []));
    l.push(a);
  }
  const bound = allowed === 'none' ? undefined : allowed;
  const inBound = (t: Told) => bound !== undefined && bound.told(t);
  let expected = 0,
    delivered = 0,
    lost = 0,
    duplicated = 0,
    toldLost = 0,
    toldBeyond = 0,
    gaps = 0;
  const told: Told[] = [];
  const excused: CheckResult['excused'] = [];
  const toldOutside: Told[] = [];
  const problems: string[] = [];
  for (const s of subs) {
    const mine: string[] = [];
    const note = (p: string) => {
      if (mine.length < 5) mine.push(`${s.user}@${s.channel}: ${p}`);
    };
    /** position -> the id delivered there: an acknowledged publication counts only if it arrived there itself. */
    const seen = new Map<string, string>();
    /** Declared losses: epoch -> offset ranges (lo, hi] the subscriber was told (`told`) or cannot vouch for. */
    const declared: { epoch: string; lo: number; hi: number; told?: Told }[] = [];
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
          const t: Told = { user: s.user, channel: s.channel, at: e.at, left: epoch, epoch: e.epoch, offset: e.offset };
          told.push(t);
          if (!inBound(t)) {
            toldOutside.push(t);
            note(
              `told recovered:false at ${e.epoch}:${e.offset} (left ${epoch}) outside the bound (${bound?.what ?? 'none allowed'}) at ${new Date(e.at).toISOString()}`,
            );
          }
          declared.push({ epoch, lo: 0, hi: Number.MAX_SAFE_INTEGER, told: t });
          if (e.epoch === epoch) declared[declared.length - 1]!.hi = e.offset;
          else declared.push({ epoch: e.epoch, lo: 0, hi: e.offset, told: t });
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
      const covering = declared.filter((d) => d.epoch === a.epoch && a.offset > d.lo && a.offset <= d.hi);
      if (covering.length > 0) {
        // A resubscribe without recovery already is a problem (noted above); a told loss must be within the bound.
        const ok = covering.find((d) => !d.told || (inBound(d.told) && (bound?.excuses?.(a, d.told) ?? false)));
        if (ok) {
          toldLost++;
          excused.push({ ack: a, told: ok.told });
          continue;
        }
        toldBeyond++;
        lost++;
        note(
          `acknowledged ${a.epoch}:${a.offset} (id ${a.id}, sent ${new Date(a.sentAt).toISOString()}, acked ${new Date(a.at).toISOString()}) was excused by recovered:false beyond the bound (${bound?.what ?? 'none allowed'})`,
        );
        continue;
      }
      lost++;
      // A different publication at the acknowledged position: the stream reused it (a failover lost what was there).
      if (there !== undefined)
        note(`acknowledged ${a.epoch}:${a.offset} (id ${a.id}) but ${there} arrived at that position`);
      else note(`acknowledged ${a.epoch}:${a.offset} (id ${a.id}) never arrived and no recovered:false covers it`);
    }
    problems.push(...mine);
  }
  const line = `publications acked ${acks.length}, deliveries expected ${expected}, delivered ${delivered}, lost ${lost}, duplicated ${duplicated}, silent gaps ${gaps} (told recovered:false ${told.length} times, excusing ${toldLost} acknowledged deliveries; ${toldBeyond} excused beyond the bound, ${toldOutside.length} told outside it)`;
  return {
    acked: acks.length,
    expected,
    delivered,
    lost,
    duplicated,
    gaps,
    toldLost,
    excused,
    toldBeyond,
    told,
    toldOutside,
    problems,
    line,
  };
}
