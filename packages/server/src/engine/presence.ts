import type { ClientInfo } from './types.js';

/**
 * Presence: who is subscribed to a channel, across every node.
 *
 * Contract (memory/presence.ts, redis/presence.ts):
 * - `addPresence` is idempotent and also refreshes the entry; a node calls it again for its clients at an interval
 *   shorter than `ttlMs`, so entries of a killed node vanish within the TTL.
 * - `removePresence` removes one client's entry; absent entries are no error.
 * - `presence` maps client id -> info; `presenceStats` counts clients and distinct users.
 * - Rejects with HeraldError 100 (temporary) when the store cannot answer.
 */
export interface PresenceManager {
  addPresence(channel: string, info: ClientInfo, ttlMs: number): Promise<void>;
  removePresence(channel: string, clientId: string, user: string): Promise<void>;
  presence(channel: string): Promise<Map<string, ClientInfo>>;
  presenceStats(channel: string): Promise<PresenceStats>;
}

export interface PresenceStats {
  numClients: number;
  numUsers: number;
}
