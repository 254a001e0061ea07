import type { HeraldHooks } from '../hooks.js';
import type { UpgradeRequestInfo } from '../transport/connection.js';
import { parseRequestTarget } from '../transport/request-target.js';

/** One connection of this node as the Users screen shows it. */
export interface LocalConnection {
  client: string;
  user: string;
  transport: string;
  encoding: string;
  ip: string;
  subscriptions: string[];
  connected_at: number;
}

interface Entry {
  user: string;
  request: UpgradeRequestInfo;
  at: number;
  subs: Set<string>;
}

/**
 * This node's connections, kept from the node's own hooks (onConnect, onSubscribed, onUnsubscribe, onDisconnect), so
 * the admin UI needs nothing from the session internals.
 */
export class ConnectionRegistry {
  private readonly byClient = new Map<string, Entry>();
  private readonly byUser = new Map<string, Set<string>>();

  /** The hooks that keep the registry, each calling the app's own hook afterwards. */
  wrap(hooks: HeraldHooks): HeraldHooks {
    return {
      ...hooks,
      onConnect: (ctx) => {
        this.byClient.set(ctx.client, { user: ctx.user, request: ctx.transport, at: Date.now(), subs: new Set() });
        let set = this.byUser.get(ctx.user);
        if (!set) this.byUser.set(ctx.user, (set = new Set()));
        set.add(ctx.client);
        hooks.onConnect?.(ctx);
      },
      onSubscribed: (ctx) => {
        this.byClient.get(ctx.client)?.subs.add(ctx.channel);
        hooks.onSubscribed?.(ctx);
      },
      onUnsubscribe: (ctx) => {
        this.byClient.get(ctx.client)?.subs.delete(ctx.channel);
        hooks.onUnsubscribe?.(ctx);
      },
      onDisconnect: (ctx) => {
        const e = this.byClient.get(ctx.client);
        if (e) {
          this.byClient.delete(ctx.client);
          const set = this.byUser.get(e.user);
          set?.delete(ctx.client);
          if (set?.size === 0) this.byUser.delete(e.user);
        }
        hooks.onDisconnect?.(ctx);
      },
    };
  }

  /** The connections of `user` (everyone's when undefined), at most `limit`. */
  list(user: string | undefined, limit: number): LocalConnection[] {
    const ids = user === undefined ? this.byClient.keys() : (this.byUser.get(user) ?? new Set<string>()).values();
    const out: LocalConnection[] = [];
    for (const client of ids) {
      if (out.length >= limit) break;
      const e = this.byClient.get(client);
      if (!e) continue;
      const path = parseRequestTarget(e.request.url)?.path ?? '';
      out.push({
        client,
        user: e.user,
        transport: transportOf(path),
        encoding: 'json',
        ip: e.request.remoteAddress,
        subscriptions: [...e.subs],
        connected_at: e.at,
      });
    }
    return out;
  }
}

function transportOf(path: string): string {
  if (path.includes('uni_sse')) return 'uni_sse';
  if (path.includes('uni_http_stream')) return 'uni_http_stream';
  if (path.includes('uni_websocket')) return 'uni_websocket';
  if (path.endsWith('/http_stream') || path.endsWith('/emulation')) return 'http_stream';
  if (path.endsWith('/sse')) return 'sse';
  return 'websocket';
}
