import type {
  MapBroker,
  MapChange,
  MapStateQuery,
  MapStateResult,
  MapUpdateResult,
  MapWriteOptions,
} from '../map-broker.js';
import type { Publication } from '../types.js';
import { redisFailure, type RedisConnections } from './connection.js';
import { decodeEnvelope, encodeEnvelope } from './envelope.js';
import type { RedisKeys } from './keys.js';

/** Channels whose expired keys one sweep removes, per index. */
const SWEEP_CHANNELS = 100;

/**
 * Redis map broker (contract in ../map-broker.ts; scripts in scripts.ts): per channel a hash of entries, a zset of
 * keys for paging in key order and a zset of key expiries, all changed by one script together with the channel's
 * stream, meta and feed, so a change is atomic and its offset the stream's next. An index of channels by their
 * earliest key expiry is swept by every node; the removal script is atomic and finds nothing left to remove when
 * another node was first, so each expiry is one change.
 */
export class RedisMapBroker implements MapBroker {
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping = false;

  constructor(
    private readonly redis: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly nextEpoch: () => string,
    private readonly onError: (what: string, err: unknown) => void,
  ) {}

  startSweeper(intervalMs = 500): void {
    this.sweepTimer = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = true;
      this.sweep()
        .catch((err: unknown) => this.onError('map key expiry sweep', err))
        .finally(() => (this.sweeping = false));
    }, intervalMs);
    this.sweepTimer.unref();
  }

  /** Removes the expired keys of the channels the index says are due (one script per channel). */
  async sweep(): Promise<void> {
    const c = this.redis.commands;
    const indexes = this.keys.cluster
      ? (await c.smembers(this.keys.mapSlots)).map((tag) => this.keys.mapIndexOfTag(tag))
      : [this.keys.mapIndexOfTag('')];
    for (const index of indexes) {
      const due = await c.zrangebyscore(index, '-inf', Date.now(), 'LIMIT', 0, SWEEP_CHANNELS);
      for (const channel of due) await this.write('x', channel, '', '', undefined);
    }
  }

  async publish(channel: string, key: string, change: MapChange, options: MapWriteOptions): Promise<MapUpdateResult> {
    const envelope = encodeEnvelope({ ...change, key });
    return this.write('p', channel, key, envelope, options);
  }

  async remove(channel: string, key: string, options: MapWriteOptions): Promise<MapUpdateResult> {
    return this.write('r', channel, key, '', options);
  }

  async readState(channel: string, query: MapStateQuery): Promise<MapStateResult> {
    let reply: (string | number)[];
    try {
      reply = await this.redis.commands.heraldMapReadState(
        this.keys.stream(channel),
        this.keys.meta(channel),
        this.keys.registry(channel),
        this.keys.mapState(channel),
        this.keys.mapKeys(channel),
        this.keys.mapExpiry(channel),
        this.nextEpoch(),
        query.cursor,
        Math.max(1, query.limit),
      );
    } catch (err) {
      throw redisFailure('map state read', err);
    }
    const position = { offset: Number(reply[0]), epoch: String(reply[1]) };
    const entries: Publication[] = [];
    for (let i = 3; i + 1 < reply.length; i += 2) {
      const stored = String(reply[i + 1]);
      const colon = stored.indexOf(':');
      entries.push(decodeEnvelope(stored.slice(colon + 1), Number(stored.slice(0, colon))));
    }
    return { entries, position, cursor: reply.length > 2 ? String(reply[2]) : '' };
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
  }

  private async write(
    op: 'p' | 'r' | 'x',
    channel: string,
    key: string,
    envelope: string,
    options: MapWriteOptions | undefined,
  ): Promise<MapUpdateResult> {
    const idemTtl =
      options?.idempotencyKey !== undefined ? Math.max(1, Math.round(options.idempotentResultTtlMs ?? 300_000)) : 0;
    let reply: [number | string, string, string];
    try {
      // In a cluster, the sweep walks the slots listed here: list the slot before its index can hold the channel.
      if (this.keys.cluster && options && options.keyTtlMs > 0)
        await this.redis.commands.sadd(this.keys.mapSlots, this.keys.slotTagOf(channel));
      reply = await this.redis.commands.heraldMapWrite(
        this.keys.stream(channel),
        this.keys.meta(channel),
        this.keys.idempotency(channel, options?.idempotencyKey ?? ''),
        this.keys.registry(channel),
        this.keys.mapState(channel),
        this.keys.mapKeys(channel),
        this.keys.mapExpiry(channel),
        this.keys.mapIndex(channel),
        op,
        envelope,
        options?.streamSize ?? 0,
        Math.max(1, Math.round(options?.streamTtlMs ?? 0)),
        Math.max(1, Math.round(options?.metaTtlMs ?? 0)),
        this.keys.feed(channel),
        this.nextEpoch(),
        idemTtl,
        key,
        Math.max(0, Math.round(options?.keyTtlMs ?? 0)),
        options?.ifNew ? '1' : '0',
        channel,
      );
    } catch (err) {
      const unanswered = err instanceof Error && /timed out/i.test(err.message);
      throw redisFailure(
        unanswered
          ? `map ${op === 'r' ? 'remove' : 'publish'} (unanswered: it may still be applied; retry with an idempotency_key to avoid a duplicate)`
          : `map ${op === 'r' ? 'remove' : 'publish'} (not stored)`,
        err,
      );
    }
    const [first, second, reason] = reply;
    if (reason === 'idempotency') {
      const colon = second.indexOf(':');
      return {
        position: { offset: Number(second.slice(0, colon)), epoch: second.slice(colon + 1) },
        suppressed: true,
        suppressReason: 'idempotency',
      };
    }
    const position = { offset: Number(first), epoch: second };
    if (reason === 'key_not_found' || reason === 'key_exists')
      return { position, suppressed: true, suppressReason: reason };
    return { position, suppressed: false };
  }
}
