import type { History, HistoryQuery, HistoryResult } from '../history.js';
import type { Publication } from '../types.js';
import { redisFailure, type RedisConnections } from './connection.js';
import { decodeEnvelope } from './envelope.js';
import type { RedisKeys } from './keys.js';

/** Redis history (contract in ../history.ts): one script reads meta and stream together, so position and
 * publications are one consistent snapshot. Writes happen in RedisBroker.publish. */
export class RedisHistory implements History {
  /**
   * Reads asked for in this event-loop turn and not sent yet, by what they ask. The same read asked again before it
   * is sent shares it: after a node restarts, the subscribers of a channel come back recovering from the same
   * offset, and one read (one reply to parse) serves them all instead of one each queuing behind the others on the
   * commands connection. Every caller asked before the read was sent, so the answer is as fresh as a read of its
   * own. The result is shared: callers only read it.
   */
  private readonly unsent = new Map<string, Promise<HistoryResult>>();

  constructor(
    private readonly redis: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly nextEpoch: () => string,
  ) {}

  history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const key = [
      channel,
      query.since ? query.since.offset : -1,
      query.limit,
      query.reverse ? 1 : 0,
      query.historySize,
      query.historyTtlMs,
      query.historyMetaTtlMs,
    ].join('\u0000');
    const unsent = this.unsent.get(key);
    if (unsent) return unsent;
    const read = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.unsent.delete(key);
      return this.read(channel, query);
    });
    this.unsent.set(key, read);
    return read;
  }

  private async read(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    let reply: (string | number)[];
    try {
      reply = await this.redis.commands.heraldHistory(
        this.keys.stream(channel),
        this.keys.meta(channel),
        this.keys.registry(channel),
        this.nextEpoch(),
        Math.max(1, query.historyMetaTtlMs, query.historyTtlMs),
        query.since ? query.since.offset : -1,
        query.limit < 0 ? -1 : query.limit,
        query.reverse ? '1' : '0',
        Math.max(1, query.historyTtlMs),
        Math.max(0, query.historySize),
      );
    } catch (err) {
      throw redisFailure('history', err);
    }
    const position = { offset: Number(reply[0]), epoch: String(reply[1]) };
    const publications: Publication[] = [];
    for (let i = 2; i + 1 < reply.length; i += 2)
      publications.push(decodeEnvelope(String(reply[i + 1]), Number(reply[i])));
    return { publications, position };
  }

  async rotateEpoch(channel: string, epoch: string): Promise<string> {
    try {
      return await this.redis.commands.heraldRotateEpoch(this.keys.meta(channel), epoch, this.nextEpoch());
    } catch (err) {
      throw redisFailure('rotate epoch', err);
    }
  }

  async removeHistory(channel: string): Promise<void> {
    try {
      await this.redis.commands.del(this.keys.stream(channel));
    } catch (err) {
      throw redisFailure('remove history', err);
    }
  }
}
