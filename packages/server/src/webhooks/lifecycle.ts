import type { LifecycleStore } from '../engine/lifecycle.js';
import type { Logger } from '../logger.js';
import type { WebhookEmitter } from './events.js';

/** The key of a channel's subscribers, and the prefix of a user's presence key (engine/lifecycle.ts). */
const OCCUPIED = 'o';
const PRESENCE = 'p:';
/** Channels one sweep looks at (per Redis). */
const SWEEP_LIMIT = 100;
/** Seconds between two sweeps of a node. */
const SWEEP_EVERY_S = 5;

export interface LifecycleTrackerOptions {
  emitter: WebhookEmitter;
  /** The engine's shared state; undefined on an engine that is not shared (this node sees every transition). */
  store: LifecycleStore | undefined;
  node: string;
  /** A hold not refreshed for this long is released by another node's sweep (HERALD_PRESENCE_TTL). */
  ttlMs: number;
  log: Logger;
  onStateError(): void;
}

/**
 * The channel_occupied / channel_vacated and presence_join / presence_leave events. The node counts its own active
 * subscriptions per channel (and per user in channels with presence); when a count leaves or reaches 0 it holds or
 * releases the key in the engine's shared state, which answers whether that was the transition across every node, so
 * each event is sent by one node only. Holds are refreshed within the TTL; a node that stops refreshing them (killed)
 * has them released by the next sweep of a living node, which sends the vacated / leave events.
 */
export class LifecycleTracker {
  private readonly occupancy: boolean;
  private readonly presence: boolean;
  /** channel -> key -> active local subscriptions behind it. */
  private readonly held = new Map<string, Map<string, number>>();
  private ticks = 0;
  /** Engine calls not answered yet (close waits for them, so the last vacated/leave events are queued). */
  private inFlight = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private lastWarnAt = 0;

  constructor(private readonly o: LifecycleTrackerOptions) {
    this.occupancy = o.emitter.wants('channel_occupied') || o.emitter.wants('channel_vacated');
    this.presence = o.emitter.wants('presence_join') || o.emitter.wants('presence_leave');
  }

  get active(): boolean {
    return this.occupancy || this.presence;
  }

  subscribed(channel: string, user: string, presence: boolean): void {
    if (this.occupancy) this.up(channel, OCCUPIED);
    if (this.presence && presence) this.up(channel, PRESENCE + user);
  }

  unsubscribed(channel: string, user: string, presence: boolean): void {
    if (this.occupancy) this.down(channel, OCCUPIED);
    if (this.presence && presence) this.down(channel, PRESENCE + user);
  }

  /** Once a second (the node's ticker): refreshes the holds within the TTL and sweeps the holds of dead nodes. */
  tick(): void {
    const store = this.o.store;
    if (!store || !this.active) return;
    this.ticks++;
    if (this.ticks % Math.max(1, Math.floor(this.o.ttlMs / 3000)) === 0) {
      for (const [channel, keys] of this.held) for (const key of keys.keys()) this.hold(store, channel, key);
    }
    if (this.ticks % SWEEP_EVERY_S === 0) {
      this.track(store.sweep(SWEEP_LIMIT)).then(
        (gone) => {
          for (const g of gone) this.send(g.channel, g.key, false);
        },
        (err: unknown) => this.failed(err, 'sweep'),
      );
    }
  }

  private up(channel: string, key: string): void {
    let keys = this.held.get(channel);
    if (!keys) this.held.set(channel, (keys = new Map()));
    const n = (keys.get(key) ?? 0) + 1;
    keys.set(key, n);
    if (n > 1) return;
    if (this.o.store) this.hold(this.o.store, channel, key);
    else this.send(channel, key, true);
  }

  private down(channel: string, key: string): void {
    const keys = this.held.get(channel);
    const n = (keys?.get(key) ?? 0) - 1;
    if (!keys || n < 0) return;
    if (n > 0) {
      keys.set(key, n);
      return;
    }
    keys.delete(key);
    if (keys.size === 0) this.held.delete(channel);
    const store = this.o.store;
    if (!store) {
      this.send(channel, key, false);
      return;
    }
    this.track(store.release(channel, key, this.o.node)).then(
      (last) => last && this.send(channel, key, false),
      (err: unknown) => this.failed(err, 'release'),
    );
  }

  private hold(store: LifecycleStore, channel: string, key: string): void {
    this.track(store.hold(channel, key, this.o.node, this.o.ttlMs)).then(
      (first) => first && this.send(channel, key, true),
      (err: unknown) => this.failed(err, 'hold'),
    );
  }

  /** Resolves once every engine call made so far is answered, or after `timeoutMs`. */
  idle(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight++;
    const done = () => {
      if (--this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
    p.then(done, done);
    return p;
  }

  private send(channel: string, key: string, up: boolean): void {
    if (key === OCCUPIED) this.o.emitter.emit(up ? 'channel_occupied' : 'channel_vacated', { channel });
    else if (key.startsWith(PRESENCE))
      this.o.emitter.emit(up ? 'presence_join' : 'presence_leave', { channel, user: key.slice(PRESENCE.length) });
  }

  private failed(err: unknown, what: string): void {
    this.o.onStateError();
    // One line per 10 s at most: with the engine down every subscribe and unsubscribe fails the same way.
    const now = Date.now();
    if (now - this.lastWarnAt < 10_000) return;
    this.lastWarnAt = now;
    this.o.log.warn(
      { err, what, code: 'webhook_state_failed' },
      'webhook lifecycle state update failed: an occupied/vacated or presence event may be late or missing (the hold is retried at the next refresh)',
    );
  }
}
