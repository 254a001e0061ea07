import type { PresenceManager, PresenceStats } from '../presence.js';
import type { ClientInfo } from '../types.js';

/** Single-node presence (contract in ../presence.ts). Entries are removed explicitly; the TTL is not needed here. */
export class MemoryPresence implements PresenceManager {
  private readonly channels = new Map<string, Map<string, ClientInfo>>();

  async addPresence(channel: string, info: ClientInfo): Promise<void> {
    let entries = this.channels.get(channel);
    if (!entries) {
      entries = new Map();
      this.channels.set(channel, entries);
    }
    entries.set(info.client, info);
  }

  async removePresence(channel: string, clientId: string): Promise<void> {
    const entries = this.channels.get(channel);
    if (!entries) return;
    entries.delete(clientId);
    if (entries.size === 0) this.channels.delete(channel);
  }

  async presence(channel: string): Promise<Map<string, ClientInfo>> {
    return new Map(this.channels.get(channel) ?? []);
  }

  async presenceStats(channel: string): Promise<PresenceStats> {
    const entries = this.channels.get(channel);
    if (!entries) return { numClients: 0, numUsers: 0 };
    const users = new Set<string>();
    for (const info of entries.values()) users.add(info.user);
    return { numClients: entries.size, numUsers: users.size };
  }
}
