import type { PresenceManager, PresenceStats } from '../presence.js';
import type { ClientInfo } from '../types.js';
import { redisFailure, type RedisConnections } from './connection.js';
import type { RedisKeys } from './keys.js';

/**
 * Redis presence (contract in ../presence.ts): a hash of client -> info and a sorted set of expiry times per
 * channel. Nodes refresh their clients' entries; entries of a node that died expire by the sorted set and are
 * dropped on the next read.
 */
export class RedisPresence implements PresenceManager {
  constructor(
    private readonly redis: RedisConnections,
    private readonly keys: RedisKeys,
  ) {}

  async addPresence(channel: string, info: ClientInfo, ttlMs: number): Promise<void> {
    try {
      await this.redis.commands.heraldPresenceAdd(
        this.keys.presence(channel),
        this.keys.presenceExpiry(channel),
        info.client,
        JSON.stringify(info),
        Math.max(1, ttlMs),
      );
    } catch (err) {
      throw redisFailure('presence add', err);
    }
  }

  async removePresence(channel: string, clientId: string): Promise<void> {
    try {
      await this.redis.commands.heraldPresenceRemove(
        this.keys.presence(channel),
        this.keys.presenceExpiry(channel),
        clientId,
      );
    } catch (err) {
      throw redisFailure('presence remove', err);
    }
  }

  async presence(channel: string): Promise<Map<string, ClientInfo>> {
    let flat: string[];
    try {
      flat = await this.redis.commands.heraldPresenceGet(
        this.keys.presence(channel),
        this.keys.presenceExpiry(channel),
        '1',
      );
    } catch (err) {
      throw redisFailure('presence', err);
    }
    const out = new Map<string, ClientInfo>();
    for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i]!, JSON.parse(flat[i + 1]!) as ClientInfo);
    return out;
  }

  async presenceStats(channel: string): Promise<PresenceStats> {
    let values: string[];
    try {
      values = await this.redis.commands.heraldPresenceGet(
        this.keys.presence(channel),
        this.keys.presenceExpiry(channel),
        '0',
      );
    } catch (err) {
      throw redisFailure('presence stats', err);
    }
    const users = new Set<string>();
    for (const v of values) users.add((JSON.parse(v) as ClientInfo).user);
    return { numClients: values.length, numUsers: users.size };
  }
}
