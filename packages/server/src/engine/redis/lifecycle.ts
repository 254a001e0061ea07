import type { LifecycleStore } from '../lifecycle.js';
import { redisFailure, type RedisConnections } from './connection.js';
import type { RedisKeys } from './keys.js';

/**
 * Redis lifecycle state (contract in ../lifecycle.ts; scripts in scripts.ts): per channel a sorted set of holds
 * (`<node>|<key>` -> expiry) and a hash of how many nodes hold each key, and one index of channels by their
 * earliest hold expiry, which `sweep` walks to release the holds of nodes that stopped refreshing them.
 */
export class RedisLifecycle implements LifecycleStore {
  constructor(
    private readonly redis: RedisConnections,
    private readonly keys: RedisKeys,
  ) {}

  async hold(channel: string, key: string, node: string, ttlMs: number): Promise<boolean> {
    try {
      // In a cluster, the sweep walks the slots listed here: list the slot before its index can hold the channel.
      if (this.keys.cluster) await this.redis.commands.sadd(this.keys.lifecycleSlots, this.keys.slotTagOf(channel));
      const first = await this.redis.commands.heraldLifecycleHold(
        this.keys.lifecycleHolds(channel),
        this.keys.lifecycleCounts(channel),
        this.keys.lifecycleIndex(channel),
        `${node}|${key}`,
        key,
        Math.max(1, Math.round(ttlMs)),
        channel,
      );
      return first === 1;
    } catch (err) {
      throw redisFailure('lifecycle hold', err);
    }
  }

  async release(channel: string, key: string, node: string): Promise<boolean> {
    try {
      const last = await this.redis.commands.heraldLifecycleRelease(
        this.keys.lifecycleHolds(channel),
        this.keys.lifecycleCounts(channel),
        this.keys.lifecycleIndex(channel),
        `${node}|${key}`,
        key,
        channel,
      );
      return last === 1;
    } catch (err) {
      throw redisFailure('lifecycle release', err);
    }
  }

  async sweep(limit: number): Promise<{ channel: string; key: string }[]> {
    let flat: string[];
    try {
      if (!this.keys.cluster) {
        flat = await this.redis.commands.heraldLifecycleSweep(
          this.keys.lifecycleIndexOfTag(''),
          limit,
          this.keys.prefix,
        );
      } else {
        // One index per slot with holds (at most 16384; a slot stays listed once it had a hold).
        const tags = await this.redis.commands.smembers(this.keys.lifecycleSlots);
        const parts = await Promise.all(
          tags.map((tag) =>
            this.redis.commands.heraldLifecycleSweep(this.keys.lifecycleIndexOfTag(tag), limit, this.keys.prefix),
          ),
        );
        flat = parts.flat();
      }
    } catch (err) {
      throw redisFailure('lifecycle sweep', err);
    }
    const out: { channel: string; key: string }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ channel: flat[i]!, key: flat[i + 1]! });
    return out;
  }
}
