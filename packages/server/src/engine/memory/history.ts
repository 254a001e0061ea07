import { createHash, randomBytes } from 'node:crypto';
import type { History, HistoryQuery, HistoryResult } from '../history.js';
import type { Publication, StreamPosition } from '../types.js';

/** One channel's stream: a bounded ring of publications with consecutive offsets, an epoch and expiry times. */
interface Stream {
  epoch: string;
  top: number;
  /**
   * Publications in offset order from index `head` on; `expiresAt[i]` is when `pubs[i]` leaves history. Entries
   * before `head` are gone from history and are cut off the arrays once they are half of them (so trimming a full
   * stream on every append costs no shift of the whole array).
   */
  pubs: Publication[];
  expiresAt: number[];
  head: number;
  /** When the whole stream (epoch and top included) is forgotten. */
  metaExpiresAt: number;
}

export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/** Bits of the first-life registry (1 MiB); it starts over under a new generation once this many are set. */
export const FIRST_LIFE_BITS = 1 << 23;
export const FIRST_LIFE_ROTATE_AT = 1 << 18;

function registryBit(channel: string): number {
  // FNV-1a over the UTF-16 code units: a collision only costs a channel its deterministic first epoch.
  let h = 0x811c9dc5;
  for (let i = 0; i < channel.length; i++) h = Math.imul(h ^ channel.charCodeAt(i), 0x01000193);
  return (h >>> 0) % FIRST_LIFE_BITS;
}

/**
 * Epochs of channels without a stream, without storing anything per channel (see ../history.ts). A read of such a
 * channel answers offset 0 and `firstEpoch(channel)` while the channel's bit in the registry is clear; the first
 * publish sets the bit and creates the stream with exactly that epoch, so a client that read the empty channel
 * recovers every publication from offset 1. A channel whose bit is set may have had a stream that ended: its reads
 * answer `staleEpoch(channel)` (never the epoch of any stream) and its next stream gets a random epoch, so a
 * position from an ended stream is never taken for one in the new stream. The generation is random per process
 * (a restart loses the streams, and the epochs change with it) and is drawn again when the registry fills up.
 */
class FirstLifeRegistry {
  private generation = newEpoch();
  private bits: Uint8Array | undefined;
  private count = 0;

  isUsed(channel: string): boolean {
    const bit = registryBit(channel);
    return this.bits !== undefined && (this.bits[bit >> 3]! & (1 << (bit & 7))) !== 0;
  }

  firstEpoch(channel: string): string {
    return createHash('sha256').update(`${this.generation}\n${channel}`).digest('base64url').slice(0, 12);
  }

  staleEpoch(channel: string): string {
    return 'x' + createHash('sha256').update(`${this.generation}\nx\n${channel}`).digest('base64url').slice(0, 11);
  }

  /** The epoch of a new stream of `channel`; marks the channel as having had one. */
  claim(channel: string): string {
    if (this.isUsed(channel)) return newEpoch();
    const epoch = this.firstEpoch(channel);
    const bit = registryBit(channel);
    this.bits ??= new Uint8Array(FIRST_LIFE_BITS / 8);
    this.bits[bit >> 3]! |= 1 << (bit & 7);
    if (++this.count > FIRST_LIFE_ROTATE_AT) {
      // A new generation: every first epoch changes, so a cleared bit can never hand out an old one again.
      this.generation = newEpoch();
      this.bits.fill(0);
      this.count = 0;
    }
    return epoch;
  }
}

/**
 * Memory history (see ../history.ts for the contract). Appends happen only through MemoryBroker.publish, which
 * calls `append` synchronously in the same step as fan-out.
 */
export class MemoryHistory implements History {
  private readonly streams = new Map<string, Stream>();
  private readonly registry = new FirstLifeRegistry();
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Drops expired streams periodically so idle channels do not hold memory forever. */
  startSweeper(intervalMs = 10_000): void {
    this.sweepTimer = setInterval(() => this.sweep(), intervalMs);
    this.sweepTimer.unref();
  }

  stopSweeper(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
  }

  sweep(): void {
    const now = this.now();
    for (const [channel, stream] of this.streams) {
      if (stream.metaExpiresAt <= now) this.streams.delete(channel);
      else this.trim(stream, 0, now);
    }
  }

  append(
    channel: string,
    pub: Omit<Publication, 'offset'>,
    size: number,
    ttlMs: number,
    metaTtlMs: number,
  ): Publication & { epoch: string } {
    const now = this.now();
    let stream = this.live(channel, now);
    if (!stream) {
      stream = {
        epoch: this.registry.claim(channel),
        top: 0,
        pubs: [],
        expiresAt: [],
        head: 0,
        metaExpiresAt: now + metaTtlMs,
      };
      this.streams.set(channel, stream);
    }
    stream.top += 1;
    const stored: Publication = { ...pub, offset: stream.top };
    stream.pubs.push(stored);
    stream.expiresAt.push(now + ttlMs);
    stream.metaExpiresAt = Math.max(stream.metaExpiresAt, now + Math.max(metaTtlMs, ttlMs));
    this.trim(stream, size, now);
    return Object.assign(stored, { epoch: stream.epoch });
  }

  /** The stream's top position, read synchronously (map state reads pair it with the state in one step). */
  position(channel: string): StreamPosition {
    const stream = this.live(channel, this.now());
    if (stream) return { offset: stream.top, epoch: stream.epoch };
    // Nothing is created for a read: the position of a channel that never had a publication is computed.
    const epoch = this.registry.isUsed(channel) ? this.registry.staleEpoch(channel) : this.registry.firstEpoch(channel);
    return { offset: 0, epoch };
  }

  /**
   * Keeps the stream's epoch and top offset for at least `metaTtlMs` more (a map channel holding keys: its state's
   * offsets belong to this stream, which must not end under them).
   */
  keepAlive(channel: string, metaTtlMs: number): void {
    const now = this.now();
    const stream = this.live(channel, now);
    if (stream) stream.metaExpiresAt = Math.max(stream.metaExpiresAt, now + metaTtlMs);
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const now = this.now();
    const stream = this.live(channel, now);
    if (!stream) return { publications: [], position: this.position(channel) };
    this.trim(stream, query.historySize, now);
    const position: StreamPosition = { offset: stream.top, epoch: stream.epoch };
    if (query.limit === 0) return { publications: [], position };
    const all = stream.pubs;
    const head = stream.head;
    let pubs: Publication[];
    if (query.since && head < all.length) {
      const after = query.since.offset;
      // Offsets are consecutive, so the first wanted index is computed rather than searched.
      pubs = all.slice(head + Math.max(0, after - all[head]!.offset + 1));
    } else {
      pubs = all.slice(head);
    }
    if (query.reverse) pubs.reverse();
    if (query.limit > 0 && pubs.length > query.limit) pubs = pubs.slice(0, query.limit);
    return { publications: pubs, position };
  }

  async removeHistory(channel: string): Promise<void> {
    const stream = this.streams.get(channel);
    if (!stream) return;
    stream.pubs = [];
    stream.expiresAt = [];
    stream.head = 0;
  }

  async rotateEpoch(channel: string, epoch: string): Promise<string> {
    const stream = this.streams.get(channel);
    if (!stream) return '';
    if (stream.epoch === epoch) stream.epoch = newEpoch();
    return stream.epoch;
  }

  /** Channels that have a stream (a publication within their meta TTL). */
  get numStreams(): number {
    return this.streams.size;
  }

  /** The channel's stream unless its meta expired (then it is dropped). */
  private live(channel: string, now: number): Stream | undefined {
    const stream = this.streams.get(channel);
    if (stream && stream.metaExpiresAt <= now) {
      this.streams.delete(channel);
      return undefined;
    }
    return stream;
  }

  private trim(stream: Stream, size: number, now: number): void {
    const len = stream.pubs.length;
    let head = stream.head;
    if (size > 0 && len - head > size) head = len - size;
    while (head < len && stream.expiresAt[head]! <= now) head++;
    if (head === stream.head) return;
    if (head >= 32 && head * 2 >= len) {
      stream.pubs.splice(0, head);
      stream.expiresAt.splice(0, head);
      head = 0;
    }
    stream.head = head;
  }
}
