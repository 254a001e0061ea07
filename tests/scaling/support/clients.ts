// SDK clients (the real `centrifuge` package) that reach the cluster through a load balancer of our own: every
// (re)connect asks it for a node, so a client moves to another node when its node dies, like behind a real balancer.
import WebSocket from 'ws';
import { Centrifuge, type Options, type Subscription } from 'centrifuge';
import type { HeraldNode } from './nodes.js';
import { token } from './nodes.js';

export class Balancer {
  private next = 0;
  constructor(private readonly nodes: () => HeraldNode[]) {}
  /** Round robin over the nodes that are alive. */
  url(): string {
    const alive = this.nodes().filter((n) => n.alive());
    if (alive.length === 0) return 'ws://127.0.0.1:1/connection/websocket';
    return alive[this.next++ % alive.length]!.wsUrl;
  }
  /** A WebSocket class for the SDK that ignores the SDK's URL and asks `pick` (default: the balancer). */
  webSocketClass(pick: () => string = () => this.url()): typeof WebSocket {
    return class BalancedWebSocket extends WebSocket {
      constructor(_url: string, protocols?: string | string[]) {
        super(pick(), protocols);
      }
    } as unknown as typeof WebSocket;
  }
}

/** What one subscription saw, in order. */
export type SubEvent =
  | { type: 'subscribed'; wasRecovering: boolean; recovered: boolean; epoch: string; offset: number; at: number }
  | { type: 'pub'; offset: number; id: string; at: number };

export interface TrackedSub {
  user: string;
  channel: string;
  client: Centrifuge;
  sub: Subscription;
  events: SubEvent[];
  /** Where the SDK is connected now (the URL of the last opened WebSocket). */
  connectedTo(): string;
}

export async function subscriber(
  user: string,
  channel: string,
  pick: () => string,
  options: Partial<Options> = {},
  subOptions: { joinLeave?: boolean } = {},
): Promise<TrackedSub> {
  let last = '';
  const Ws = class extends WebSocket {
    constructor(_url: string, protocols?: string | string[]) {
      last = pick();
      super(last, protocols);
    }
  };
  const client = new Centrifuge('ws://balancer/connection/websocket', {
    websocket: Ws as unknown as Options['websocket'],
    getToken: () => token(user),
    minReconnectDelay: 50,
    maxReconnectDelay: 400,
    timeout: 3000,
    ...options,
  });
  const events: SubEvent[] = [];
  const sub = client.newSubscription(channel, { minResubscribeDelay: 50, maxResubscribeDelay: 400, ...subOptions });
  sub.on('subscribed', (ctx) => {
    events.push({
      type: 'subscribed',
      wasRecovering: ctx.wasRecovering,
      recovered: ctx.recovered,
      epoch: ctx.streamPosition?.epoch ?? '',
      offset: ctx.streamPosition?.offset ?? 0,
      at: Date.now(),
    });
  });
  sub.on('publication', (ctx) => {
    events.push({
      type: 'pub',
      offset: ctx.offset ?? 0,
      id: String((ctx.data as { id?: unknown })?.id ?? ''),
      at: Date.now(),
    });
  });
  sub.on('error', () => {});
  client.on('error', () => {});
  const subscribed = new Promise<void>((resolve) => sub.once('subscribed', () => resolve()));
  sub.subscribe();
  client.connect();
  await Promise.race([
    subscribed,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${user} did not subscribe to ${channel}`)), 10_000)),
  ]);
  return { user, channel, client, sub, events, connectedTo: () => last };
}
