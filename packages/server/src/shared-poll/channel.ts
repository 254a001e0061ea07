import { randomBytes } from 'node:crypto';
import type { SharedPollNamespaceOptions } from '../config/namespace.js';
import { ErrorCode, HeraldError } from '../protocol/codes.js';
import { encodeKeyedPubPush } from '../protocol/replies.js';
import type { SharedPollAnswer } from '../proxy/proxies.js';
import type { SharedFrame } from '../transport/connection.js';

/**
 * One shared poll channel on this node (docs/shared-poll.md): the keys its subscribers track, each key's latest data
 * and version, and the poller that asks the app's backend for them every refresh_interval, in batches spread over
 * the interval. A change is one frame, written to every subscriber tracking the key whose version is older; a
 * subscriber is never sent a version it already has.
 *
 * Versions: in versioned mode they are the backend's (valid on every node); in versionless mode Herald numbers each
 * change of a key's data from a counter of this channel, valid with the channel's epoch (8 random characters, made
 * with the channel's state, given in the subscribe reply: a client holding versions of another epoch starts over).
 */

export interface SharedPollSubscriber {
  readonly id: string;
  deliver(frame: SharedFrame): void;
}

export interface SharedPollTrackItem {
  key: string;
  /** The version the client holds; 0 for none. */
  version: number;
}

/** A key's data this node holds, newer than the version a tracking client holds. */
export interface SharedPollCached {
  key: string;
  /** JSON text. */
  data: string;
  version: number;
}

export interface SharedPollTrackBatch {
  items: readonly SharedPollTrackItem[];
  /** When the batch's signature expired, ms; 0 never. Past it plus track_expired_extra_delay, the keys are dropped. */
  expiresAtMs: number;
}

/** What a channel needs from the node: the backend call (behind the node's concurrency limit), timers and logs. */
export interface SharedPollDeps {
  refresh(body: { channel: string; items: { key: string; version?: number }[] }): Promise<SharedPollAnswer>;
  /** Runs fn after ms (0: on a later turn); returns what cancels it. */
  schedule(ms: number, fn: () => void): () => void;
  now(): number;
  warn(obj: object, msg: string): void;
  /** The channel has had no subscriber for channel_shutdown_delay and closed itself. */
  closed(channel: string): void;
}

interface Tracker {
  version: number;
  expiresAtMs: number;
}

interface KeyState {
  /** The version of `data`; 0 before the backend answered for the key. */
  version: number;
  /** JSON text of the key's latest data. */
  data: string | undefined;
  /** The poll whose answer set the state: an older poll's late answer is ignored. */
  appliedSeq: number;
  trackers: Map<SharedPollSubscriber, Tracker>;
}

/** A failed refresh is logged at most this often per channel (a backend down is polled every interval). */
const WARN_EVERY_MS = 60_000;

export class SharedPollChannel {
  private readonly keys = new Map<string, KeyState>();
  private readonly subscribers = new Map<SharedPollSubscriber, Set<string>>();
  private readonly channelJson: string;
  private readonly versioned: boolean;
  /** Versionless: made with the state; versioned: the backend's epoch once it gave one, else ''. */
  private epochValue: string;
  private backendEpoch: string | undefined;
  private counter = 0;
  private seq = 0;
  private cancelCycle: (() => void) | undefined;
  private cycling = false;
  private cancelShutdown: (() => void) | undefined;
  private readonly cold = new Set<string>();
  private cancelCold: (() => void) | undefined;
  private lastColdAt = -Infinity;
  private readonly delays = new Set<() => void>();
  private lastWarnAt = -Infinity;
  private isClosed = false;

  constructor(
    readonly channel: string,
    private readonly opts: SharedPollNamespaceOptions,
    private readonly deps: SharedPollDeps,
  ) {
    this.channelJson = JSON.stringify(channel);
    this.versioned = opts.mode === 'versioned';
    this.epochValue = this.versioned ? '' : randomBytes(6).toString('base64url');
  }

  get epoch(): string {
    return this.epochValue;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Keys tracked by at least one subscriber. */
  get keyCount(): number {
    return this.keys.size;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Keys `sub` tracks here. */
  trackedBy(sub: SharedPollSubscriber): number {
    return this.subscribers.get(sub)?.size ?? 0;
  }

  join(sub: SharedPollSubscriber): void {
    if (!this.subscribers.has(sub)) this.subscribers.set(sub, new Set());
    this.cancelShutdown?.();
    this.cancelShutdown = undefined;
  }

  leave(sub: SharedPollSubscriber): void {
    const own = this.subscribers.get(sub);
    if (!own) return;
    for (const key of own) this.dropTracker(sub, key);
    this.subscribers.delete(sub);
    if (this.subscribers.size === 0 && !this.cancelShutdown) {
      this.cancelShutdown = this.deps.schedule(this.opts.channel_shutdown_delay_ms, () => {
        this.cancelShutdown = undefined;
        if (this.subscribers.size > 0) return;
        this.close();
        this.deps.closed(this.channel);
      });
    }
  }

  /**
   * Untracks `untrack`, then tracks the batches' keys at the versions the client holds (signatures already checked).
   * Returns the keys whose data this node holds in a newer version than the client's (the client counts as holding
   * them from now on: the caller must send them, in the track reply or right after it). Keys without data that the client holds nothing of are polled at once. Throws 106
   * (nothing changed) when the subscriber would track more than max_keys_per_connection keys.
   */
  track(
    sub: SharedPollSubscriber,
    batches: readonly SharedPollTrackBatch[],
    untrack: readonly string[],
  ): SharedPollCached[] {
    const own = this.subscribers.get(sub);
    if (!own)
      throw new HeraldError(ErrorCode.permissionDenied, `permission denied: not subscribed to "${this.channel}"`);
    const adding = new Set<string>();
    const untracking = new Set(untrack);
    for (const b of batches)
      for (const it of b.items) if (!own.has(it.key) || untracking.has(it.key)) adding.add(it.key);
    let kept = own.size;
    for (const key of untracking) if (own.has(key)) kept--;
    if (kept + adding.size > this.opts.max_keys_per_connection)
      throw new HeraldError(
        ErrorCode.limitExceeded,
        `limit exceeded: at most ${this.opts.max_keys_per_connection} tracked keys per connection in "${this.channel}" (shared_poll.max_keys_per_connection); untrack some first`,
      );
    for (const key of untracking) this.untrackKey(sub, own, key);
    const out: SharedPollCached[] = [];
    for (const b of batches) {
      for (const it of b.items) {
        let ks = this.keys.get(it.key);
        if (!ks) {
          ks = { version: 0, data: undefined, appliedSeq: 0, trackers: new Map() };
          this.keys.set(it.key, ks);
        }
        let t = ks.trackers.get(sub);
        if (t) {
          t.version = it.version;
          t.expiresAtMs = b.expiresAtMs;
        } else {
          t = { version: it.version, expiresAtMs: b.expiresAtMs };
          ks.trackers.set(sub, t);
          own.add(it.key);
        }
        if (ks.data !== undefined && ks.version > t.version) {
          t.version = ks.version;
          out.push({ key: it.key, data: ks.data, version: ks.version });
        } else if (ks.data === undefined && it.version === 0) {
          this.cold.add(it.key);
        }
      }
    }
    if (this.cold.size > 0 && !this.cancelCold) {
      // At most one immediate poll per tenth of the interval: a client re-tracking keys the backend does not answer
      // cannot turn its commands into backend calls.
      const wait = Math.max(0, this.lastColdAt + this.coldGapMs - this.deps.now());
      this.cancelCold = this.deps.schedule(wait, () => this.pollCold());
    }
    this.ensureCycle();
    return out;
  }

  untrack(sub: SharedPollSubscriber, keys: readonly string[]): void {
    const own = this.subscribers.get(sub);
    if (!own) return;
    for (const key of keys) this.untrackKey(sub, own, key);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.cancelCycle?.();
    this.cancelShutdown?.();
    this.cancelCold?.();
    for (const resolve of [...this.delays]) resolve();
    this.delays.clear();
    this.keys.clear();
    this.subscribers.clear();
  }

  // ---- tracking ------------------------------------------------------------------------------------------------

  private untrackKey(sub: SharedPollSubscriber, own: Set<string>, key: string): void {
    if (!own.delete(key)) return;
    this.dropTracker(sub, key);
  }

  private dropTracker(sub: SharedPollSubscriber, key: string): void {
    const ks = this.keys.get(key);
    if (!ks) return;
    ks.trackers.delete(sub);
    if (ks.trackers.size === 0) this.keys.delete(key);
  }

  /** Keys whose signature expired more than track_expired_extra_delay ago are no longer tracked (nothing is sent). */
  private sweepExpired(now: number): void {
    const extra = this.opts.track_expired_extra_delay_ms;
    for (const [key, ks] of this.keys) {
      for (const [sub, t] of ks.trackers) {
        if (t.expiresAtMs === 0 || now <= t.expiresAtMs + extra) continue;
        ks.trackers.delete(sub);
        this.subscribers.get(sub)?.delete(key);
      }
      if (ks.trackers.size === 0) this.keys.delete(key);
    }
  }

  // ---- polling -------------------------------------------------------------------------------------------------

  private ensureCycle(): void {
    if (this.isClosed || this.cancelCycle || this.cycling || this.keys.size === 0) return;
    this.cancelCycle = this.deps.schedule(this.opts.refresh_interval_ms, () => {
      this.cancelCycle = undefined;
      this.cycle().catch((err: unknown) => this.failed(err));
    });
  }

  /**
   * One refresh cycle: every tracked key, in batches of refresh_batch_size spread evenly over the interval. The next
   * cycle starts one interval after this one started, or at once if the backend took longer (never two at once).
   */
  private async cycle(): Promise<void> {
    if (this.isClosed) return;
    this.cycling = true;
    const started = this.deps.now();
    try {
      this.sweepExpired(started);
      const keys = [...this.keys.keys()];
      const size = this.opts.refresh_batch_size;
      const n = Math.ceil(keys.length / size);
      const spread = n > 0 ? this.opts.refresh_interval_ms / n : 0;
      const polls: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        const batch = keys.slice(i * size, (i + 1) * size);
        polls.push(i === 0 ? this.poll(batch) : this.delay(i * spread).then(() => this.poll(batch)));
      }
      await Promise.all(polls);
    } finally {
      this.cycling = false;
    }
    if (this.isClosed || this.keys.size === 0) return;
    const wait = Math.max(0, started + this.opts.refresh_interval_ms - this.deps.now());
    this.cancelCycle = this.deps.schedule(wait, () => {
      this.cancelCycle = undefined;
      this.cycle().catch((err: unknown) => this.failed(err));
    });
  }

  private get coldGapMs(): number {
    return this.opts.refresh_interval_ms / 10;
  }

  private pollCold(): void {
    this.cancelCold = undefined;
    this.lastColdAt = this.deps.now();
    const keys = [...this.cold].filter((k) => this.keys.get(k)?.data === undefined);
    this.cold.clear();
    const size = this.opts.refresh_batch_size;
    for (let i = 0; i < keys.length; i += size)
      this.poll(keys.slice(i, i + size)).catch((err: unknown) => this.failed(err));
  }

  /** A bug in a cycle (never a backend failure, which poll handles): logged; the next track starts polling again. */
  private failed(err: unknown): void {
    this.cycling = false;
    this.deps.warn({ channel: this.channel, err }, `shared poll of "${this.channel}" failed`);
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.delays.delete(done);
        resolve();
      };
      this.delays.add(done);
      const cancel = this.deps.schedule(ms, done);
      if (this.isClosed) {
        cancel();
        done();
      }
    });
  }

  private async poll(keys: readonly string[]): Promise<void> {
    if (this.isClosed) return;
    const items: { key: string; version?: number }[] = [];
    for (const key of keys) {
      const ks = this.keys.get(key);
      if (ks) items.push(this.versioned ? { key, version: ks.data === undefined ? 0 : ks.version } : { key });
    }
    if (items.length === 0) return;
    const seq = ++this.seq;
    let answer: SharedPollAnswer;
    try {
      answer = await this.deps.refresh({ channel: this.channel, items });
    } catch (err) {
      const now = this.deps.now();
      if (now - this.lastWarnAt >= WARN_EVERY_MS) {
        this.lastWarnAt = now;
        this.deps.warn(
          { channel: this.channel, keys: items.length, err },
          `shared poll refresh of "${this.channel}" failed; the keys keep their last data and are asked again next interval`,
        );
      }
      return;
    }
    if (!this.isClosed) this.apply(answer, seq);
  }

  private apply(answer: SharedPollAnswer, seq: number): void {
    if (this.versioned && answer.epoch !== undefined && answer.epoch !== this.backendEpoch) {
      const first = this.backendEpoch === undefined;
      this.backendEpoch = answer.epoch;
      this.epochValue = answer.epoch;
      // The backend restarted its versions: every key's data and every client's version are of the old epoch. The
      // clients get each key again (from version 0) as this answer and the next polls bring it.
      if (!first) this.resetVersions();
    }
    for (const item of answer.items) {
      const ks = this.keys.get(item.key);
      if (!ks || seq < ks.appliedSeq) continue;
      if (item.removed) {
        if (this.versioned && item.version > 0 && item.version < ks.version) continue;
        ks.appliedSeq = seq;
        this.removeKey(item.key, ks);
        continue;
      }
      if (item.data === undefined) continue;
      if (this.versioned) {
        if (item.version <= 0) {
          this.warnBadVersion(item.key);
          continue;
        }
        if (item.version < ks.version) continue;
        ks.appliedSeq = seq;
        if (item.version > ks.version || ks.data === undefined) {
          ks.version = item.version;
          ks.data = item.data;
        }
      } else {
        ks.appliedSeq = seq;
        if (item.data !== ks.data) {
          ks.data = item.data;
          ks.version = ++this.counter;
        }
      }
      this.deliverKey(item.key, ks);
    }
  }

  private resetVersions(): void {
    for (const ks of this.keys.values()) {
      ks.version = 0;
      ks.data = undefined;
      for (const t of ks.trackers.values()) t.version = 0;
    }
  }

  private warnBadVersion(key: string): void {
    const now = this.deps.now();
    if (now - this.lastWarnAt < WARN_EVERY_MS) return;
    this.lastWarnAt = now;
    this.deps.warn(
      { channel: this.channel, key },
      `shared poll refresh of "${this.channel}" answered data without a version (versioned mode needs versions from 1); the item is skipped`,
    );
  }

  /** Sends the key's data to every tracker holding an older version: one frame for all. */
  private deliverKey(key: string, ks: KeyState): void {
    let frame: SharedFrame | undefined;
    for (const [sub, t] of ks.trackers) {
      if (t.version >= ks.version) continue;
      t.version = ks.version;
      frame ??= { text: encodeKeyedPubPush(this.channelJson, key, ks.data ?? 'null', ks.version, false) };
      sub.deliver(frame);
    }
  }

  /** The backend removed the key: every tracker is told, and the key is no longer tracked by anyone. */
  private removeKey(key: string, ks: KeyState): void {
    this.keys.delete(key);
    const frame: SharedFrame = { text: encodeKeyedPubPush(this.channelJson, key, undefined, 0, true) };
    for (const sub of ks.trackers.keys()) {
      this.subscribers.get(sub)?.delete(key);
      sub.deliver(frame);
    }
  }
}
