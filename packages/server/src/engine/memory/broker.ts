import type { Broker, BrokerEventHandler, ControlMessage, PublishOptions } from '../broker.js';
import type { ClientInfo, Publication, PublicationInput, StreamPosition } from '../types.js';
import type { MemoryHistory } from './history.js';

const DEFAULT_META_TTL_MS = 30 * 24 * 3600 * 1000;

/**
 * Single-node broker (contract in ../broker.ts). Append and fan-out run synchronously in one step, so offsets
 * reach subscribers in order with nothing in between.
 */
export class MemoryBroker implements Broker {
  private handler: BrokerEventHandler | undefined;
  private readonly idempotent = new Map<string, { position: StreamPosition; expiresAt: number }>();

  constructor(
    private readonly history: MemoryHistory,
    private readonly metaTtlMs = DEFAULT_META_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  async run(handler: BrokerEventHandler): Promise<void> {
    this.handler = handler;
  }

  async publish(channel: string, input: PublicationInput, options: PublishOptions): Promise<StreamPosition> {
    const idemKey = options.idempotencyKey ? channel + '\u0000' + options.idempotencyKey : undefined;
    if (idemKey) {
      const seen = this.idempotent.get(idemKey);
      if (seen && seen.expiresAt > this.now()) return seen.position;
    }
    let position: StreamPosition;
    if (options.historySize > 0) {
      const stored = this.history.append(
        channel,
        input,
        options.historySize,
        options.historyTtlMs,
        Math.max(this.metaTtlMs, options.historyTtlMs),
      );
      position = { offset: stored.offset, epoch: stored.epoch };
      this.handler?.onPublication(channel, stored, position);
    } else {
      position = { offset: 0, epoch: '' };
      this.handler?.onPublication(channel, { ...input, offset: 0 }, position);
    }
    if (idemKey) {
      this.pruneIdempotent();
      this.idempotent.set(idemKey, { position, expiresAt: this.now() + (options.idempotentResultTtlMs ?? 300_000) });
    }
    return position;
  }

  /** Delivers a change the map broker stored (memory/map-broker.ts), in the same step as its append. */
  deliver(channel: string, pub: Publication, position: StreamPosition): void {
    this.handler?.onPublication(channel, pub, position);
  }

  async publishJoin(channel: string, info: ClientInfo): Promise<void> {
    this.handler?.onJoin(channel, info);
  }

  async publishLeave(channel: string, info: ClientInfo): Promise<void> {
    this.handler?.onLeave(channel, info);
  }

  async publishControl(message: ControlMessage): Promise<void> {
    this.handler?.onControl(message);
  }

  async subscribe(): Promise<void> {}

  async unsubscribe(): Promise<void> {}

  async close(): Promise<void> {
    this.handler = undefined;
  }

  private pruneIdempotent(): void {
    if (this.idempotent.size < 10_000) return;
    const now = this.now();
    for (const [key, entry] of this.idempotent) if (entry.expiresAt <= now) this.idempotent.delete(key);
  }
}
