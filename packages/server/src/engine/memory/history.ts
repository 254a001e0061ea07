import { randomBytes } from 'node:crypto';
import type { History, HistoryQuery, HistoryResult } from '../history.js';
import type { Publication, StreamPosition } from '../types.js';

/** One channel's stream: a bounded ring of publications with consecutive offsets, an epoch and expiry times. */
interface Stream {
  epoch: string;
  top: number;
  /** Publications in offset order; `expiresAt[i]` is when `pubs[i]` leaves history. */
  pubs: Publication[];
  expiresAt: number[];
  /** When the whole stream (epoch and top included) is forgotten. */
  metaExpiresAt: number;
}

export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/**
 * Memory history (see ../history.ts for the contract). Appends happen only through MemoryBroker.publish, which
 * calls `append` synchronously in the same step as fan-out.
 */
export class MemoryHistory implements History {
  private readonly streams = new Map<string, Stream>();
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

  append(channel: string, pub: Omit<Publication, 'offset'>, size: number, ttlMs: number, metaTtlMs: number): Publication & { epoch: string } {
    const now = this.now();
    const stream = this.streamFor(channel, now, metaTtlMs);
    stream.top += 1;
    const stored: Publication = { ...pub, offset: stream.top };
    stream.pubs.push(stored);
    stream.expiresAt.push(now + ttlMs);
    stream.metaExpiresAt = Math.max(stream.metaExpiresAt, now + Math.max(metaTtlMs, ttlMs));
    this.trim(stream, size, now);
    return Object.assign(stored, { epoch: stream.epoch });
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const now = this.now();
    const stream = this.streamFor(channel, now, query.historyMetaTtlMs);
    this.trim(stream, query.historySize, now);
    const position: StreamPosition = { offset: stream.top, epoch: stream.epoch };
    if (query.limit === 0) return { publications: [], position };
    let pubs = stream.pubs;
    if (query.since) {
      const after = query.since.offset;
      // Offsets are consecutive, so the first wanted index is computed rather than searched.
      const first = pubs.length === 0 ? 0 : Math.max(0, after - pubs[0]!.offset + 1);
      pubs = pubs.slice(first);
    } else {
      pubs = pubs.slice();
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
  }

  async rotateEpoch(channel: string, epoch: string): Promise<string> {
    const stream = this.streams.get(channel);
    if (!stream) return '';
    if (stream.epoch === epoch) stream.epoch = newEpoch();
    return stream.epoch;
  }

  private streamFor(channel: string, now: number, metaTtlMs: number): Stream {
    let stream = this.streams.get(channel);
    if (stream && stream.metaExpiresAt <= now) {
      this.streams.delete(channel);
      stream = undefined;
    }
    if (!stream) {
      stream = { epoch: newEpoch(), top: 0, pubs: [], expiresAt: [], metaExpiresAt: now + metaTtlMs };
      this.streams.set(channel, stream);
    }
    return stream;
  }

  private trim(stream: Stream, size: number, now: number): void {
    let drop = 0;
    if (size > 0 && stream.pubs.length > size) drop = stream.pubs.length - size;
    while (drop < stream.expiresAt.length && stream.expiresAt[drop]! <= now) drop++;
    if (drop > 0) {
      stream.pubs.splice(0, drop);
      stream.expiresAt.splice(0, drop);
    }
  }
}
