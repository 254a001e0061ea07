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
      const first = await this.redis.commands.heraldLifecycleHold(
        this.keys.lifecycleHolds(channel),
        this.keys.lifecycleCounts(channel),
        this.keys.lifecycleIndex,
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
        this.keys.lifecycleIndex,
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
      flat = await this.redis.commands.heraldLifecycleSweep(this.keys.lifecycleIndex, limit, this.keys.prefix);
    } catch (err) {
      throw redisFailure('lifecycle sweep', err);
    }
    const out: { channel: string; key: string }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ channel: flat[i]!, key: flat[i + 1]! });
    return out;
  }
}
