import type { Redis } from 'ioredis';

/**
 * The pub/sub side of one Redis engine connection set: the channel feeds and the control channel. On one Redis it
 * is one subscriber connection (SUBSCRIBE); in a Redis Cluster one connection per primary that owns a subscribed
 * slot (SSUBSCRIBE, cluster-feed.ts). Neither resubscribes by itself: after `onLost` (messages may have been missed)
 * comes `onReady`, where the broker subscribes everything it wants again and then has its clients recover.
 */
export interface Feed {
  /** Whether subscribes can be sent now. */
  ready(): boolean;
  /** Subscribes these names (any number, any slots); resolves once Redis confirmed every one. */
  subscribe(names: string[]): Promise<void>;
  unsubscribe(name: string): Promise<void>;
  onMessage(handler: (name: string, message: string) => void): void;
  /** The feed is (again) connected: nothing is subscribed until the broker subscribes. */
  onReady(handler: () => void): void;
  /** A connection dropped (or a slot moved): messages may have been missed until the next `onReady`. */
  onLost(handler: () => void): void;
  close(): Promise<void>;
}

/** The feed on one Redis: one subscriber connection. */
export class StandaloneFeed implements Feed {
  constructor(readonly conn: Redis) {}

  ready(): boolean {
    return this.conn.status === 'ready';
  }

  async subscribe(names: string[]): Promise<void> {
    await this.conn.subscribe(...names);
  }

  async unsubscribe(name: string): Promise<void> {
    await this.conn.unsubscribe(name);
  }

  onMessage(handler: (name: string, message: string) => void): void {
    this.conn.on('message', handler);
  }

  onReady(handler: () => void): void {
    this.conn.on('ready', handler);
  }

  onLost(handler: () => void): void {
    this.conn.on('close', handler);
  }

  async close(): Promise<void> {
    // RedisConnections closes the connection.
  }
}
