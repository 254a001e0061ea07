import type {
  MapBroker,
  MapChange,
  MapStateQuery,
  MapStateResult,
  MapUpdateResult,
  MapWriteOptions,
} from '../map-broker.js';
import type { Publication, StreamPosition } from '../types.js';
import type { MemoryBroker } from './broker.js';
import type { MemoryHistory } from './history.js';

interface Entry {
  pub: Publication;
  /** ms since epoch; 0: never. */
  expiresAt: number;
}

interface MapState {
  entries: Map<string, Entry>;
  /** The options of the last write, for the removals the TTL sweeper makes. */
  options: MapWriteOptions;
  /** No key expires before this (ms; Infinity when none expires): the sweep skips the map until then. */
  nextExpiry: number;
}

/**
 * Single-node map broker (contract in ../map-broker.ts). State update, stream append and delivery run synchronously
 * in one step, as MemoryBroker.publish does, so changes reach subscribers in offset order with nothing in between.
 */
export class MemoryMapBroker implements MapBroker {
  private readonly maps = new Map<string, MapState>();
  private readonly idempotent = new Map<string, { result: MapUpdateResult; expiresAt: number }>();
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly history: MemoryHistory,
    private readonly broker: MemoryBroker,
    private readonly now: () => number = Date.now,
  ) {}

  /** Removes expired keys every `intervalMs` (each removal is delivered like a remove). */
  startSweeper(intervalMs = 500): void {
    this.sweepTimer = setInterval(() => this.sweep(), intervalMs);
    this.sweepTimer.unref();
  }

  sweep(): void {
    const now = this.now();
    for (const [channel, state] of this.maps) {
      // The stream lives as long as the state: its epoch is what the entries' offsets mean.
      this.history.keepAlive(channel, state.options.metaTtlMs);
      if (state.nextExpiry > now) continue;
      let next = Infinity;
      for (const [key, entry] of state.entries) {
        if (entry.expiresAt === 0) continue;
        if (entry.expiresAt <= now) this.change(channel, state, key, undefined, state.options);
        else next = Math.min(next, entry.expiresAt);
      }
      state.nextExpiry = next;
    }
  }

  async publish(channel: string, key: string, change: MapChange, options: MapWriteOptions): Promise<MapUpdateResult> {
    return this.idempotently(channel, options, () => {
      let state = this.maps.get(channel);
      if (!state) {
        state = { entries: new Map(), options, nextExpiry: Infinity };
        this.maps.set(channel, state);
      }
      const entry = state.entries.get(key);
      if (options.ifNew && entry && !this.expired(entry)) {
        // Later than before: nextExpiry, a lower bound, stays valid.
        if (options.keyTtlMs > 0) entry.expiresAt = this.now() + options.keyTtlMs;
        return { position: this.history.position(channel), suppressed: true, suppressReason: 'key_exists' };
      }
      return this.change(channel, state, key, change, options);
    });
  }

  async remove(channel: string, key: string, options: MapWriteOptions): Promise<MapUpdateResult> {
    return this.idempotently(channel, options, () => {
      const state = this.maps.get(channel);
      const entry = state?.entries.get(key);
      if (!state || !entry || this.expired(entry)) {
        return { position: this.history.position(channel), suppressed: true, suppressReason: 'key_not_found' };
      }
      return this.change(channel, state, key, undefined, options);
    });
  }

  async readState(channel: string, query: MapStateQuery): Promise<MapStateResult> {
    const position = this.history.position(channel);
    const state = this.maps.get(channel);
    if (!state) return { entries: [], position, cursor: '' };
    const keys = [...state.entries.keys()].filter((k) => k > query.cursor).sort();
    const entries: Publication[] = [];
    let i = 0;
    for (; i < keys.length && entries.length < query.limit; i++) {
      const entry = state.entries.get(keys[i]!)!;
      // A key past its TTL that the sweeper has not removed yet is gone for readers already.
      if (!this.expired(entry)) entries.push(entry.pub);
    }
    const cursor = i < keys.length ? keys[i - 1]! : '';
    return { entries, position, cursor };
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
  }

  /** Channels holding at least one key (for tests and stats). */
  get numMaps(): number {
    return this.maps.size;
  }

  private expired(entry: Entry): boolean {
    return entry.expiresAt > 0 && entry.expiresAt <= this.now();
  }

  /** One change: state, stream append and delivery in one synchronous step. `change` undefined removes the key. */
  private change(
    channel: string,
    state: MapState,
    key: string,
    change: MapChange | undefined,
    options: MapWriteOptions,
  ): MapUpdateResult {
    const base: Omit<Publication, 'offset'> = change
      ? {
          data: change.data,
          key,
          ...(change.info ? { info: change.info } : {}),
          ...(change.tags ? { tags: change.tags } : {}),
        }
      : { data: '', key, removed: true, ...this.removalTags(state.entries.get(key)) };
    const stored = this.history.append(
      channel,
      base,
      options.streamSize,
      options.streamSize > 0 ? options.streamTtlMs : 0,
      Math.max(options.metaTtlMs, options.keyTtlMs, options.streamTtlMs),
    );
    const { epoch, ...pub } = stored;
    const position: StreamPosition = { offset: pub.offset, epoch };
    state.options = options;
    if (change) {
      const expiresAt = options.keyTtlMs > 0 ? this.now() + options.keyTtlMs : 0;
      state.entries.set(key, { pub, expiresAt });
      if (expiresAt > 0) state.nextExpiry = Math.min(state.nextExpiry, expiresAt);
    } else {
      state.entries.delete(key);
      if (state.entries.size === 0) this.maps.delete(channel);
    }
    this.broker.deliver(channel, pub, position);
    return { position, suppressed: false };
  }

  /** A removal carries the removed entry's tags, so that a tags-filtered subscriber that had the key hears of it. */
  private removalTags(entry: Entry | undefined): { tags?: Record<string, string> } {
    return entry?.pub.tags ? { tags: entry.pub.tags } : {};
  }

  private idempotently(channel: string, options: MapWriteOptions, run: () => MapUpdateResult): MapUpdateResult {
    const idemKey = options.idempotencyKey ? channel + '\u0000' + options.idempotencyKey : undefined;
    if (idemKey) {
      const seen = this.idempotent.get(idemKey);
      if (seen && seen.expiresAt > this.now())
        return { position: seen.result.position, suppressed: true, suppressReason: 'idempotency' };
    }
    const result = run();
    if (idemKey) {
      if (this.idempotent.size >= 10_000) {
        const now = this.now();
        for (const [k, e] of this.idempotent) if (e.expiresAt <= now) this.idempotent.delete(k);
      }
      this.idempotent.set(idemKey, { result, expiresAt: this.now() + (options.idempotentResultTtlMs ?? 300_000) });
    }
    return result;
  }
}
