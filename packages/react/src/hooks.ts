'use client';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { PublicationContext } from '@herald/client';
import { useHerald } from './context.js';

export type SubscriptionStatus = 'unsubscribed' | 'subscribing' | 'subscribed';

/**
 * Subscribes to `channel` while mounted and calls `onPublication` for each publication, including those the SDK
 * recovers after a reconnect (in order, each once). The latest callback is always used; it need not be memoized.
 */
export function useSubscription(
  channel: string,
  onPublication?: (pub: PublicationContext) => void,
): SubscriptionStatus {
  const client = useHerald();
  const [status, setStatus] = useState<SubscriptionStatus>('unsubscribed');
  const handler = useRef(onPublication);
  handler.current = onPublication;
  useEffect(() => {
    if (!client) return;
    const { sub, release } = client.retain(channel);
    const onPub = (ctx: PublicationContext) => handler.current?.(ctx);
    const onState = () => setStatus(sub.state as SubscriptionStatus);
    sub.on('publication', onPub);
    sub.on('state', onState);
    onState();
    return () => {
      sub.off('publication', onPub);
      sub.off('state', onState);
      release();
      setStatus('unsubscribed');
    };
  }, [client, channel]);
  return status;
}

/** A state-returning variant: the publications' data received since mount, oldest first, at most `limit`. */
export function usePublications<T = unknown>(channel: string, limit = 200): T[] {
  const [items, setItems] = useState<T[]>([]);
  useSubscription(channel, (pub) => setItems((prev) => [...prev, pub.data as T].slice(-limit)));
  return items;
}

export interface PresenceMember {
  user: string;
  /** One entry per connection of this user. */
  clients: string[];
  info?: unknown;
}

/**
 * Who is in `channel` (the namespace needs presence and join_leave): the full list on every (re)subscribe, then
 * join and leave events. Grouped by user, sorted by user id.
 */
export function usePresence(channel: string): PresenceMember[] {
  const client = useHerald();
  const [members, setMembers] = useState<PresenceMember[]>([]);
  useEffect(() => {
    if (!client) return;
    const { sub, release } = client.retain(channel);
    const byClient = new Map<string, { user: string; info?: unknown }>();
    let alive = true;
    const publish = () => {
      const users = new Map<string, PresenceMember>();
      for (const [id, c] of byClient) {
        const m = users.get(c.user) ?? { user: c.user, clients: [], info: c.info };
        m.clients.push(id);
        users.set(c.user, m);
      }
      setMembers([...users.values()].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0)));
    };
    const load = () => {
      sub.presence().then(
        (r) => {
          if (!alive) return;
          byClient.clear();
          for (const [id, c] of Object.entries(r.clients)) byClient.set(id, { user: c.user, info: c.connInfo });
          publish();
        },
        () => {
          // Presence not allowed or a transient error: keep what is shown; the next subscribe reloads it.
        },
      );
    };
    const onJoin = (ctx: { info: { client: string; user: string; connInfo?: unknown } }) => {
      byClient.set(ctx.info.client, { user: ctx.info.user, info: ctx.info.connInfo });
      publish();
    };
    const onLeave = (ctx: { info: { client: string } }) => {
      byClient.delete(ctx.info.client);
      publish();
    };
    sub.on('subscribed', load);
    sub.on('join', onJoin);
    sub.on('leave', onLeave);
    if (sub.state === 'subscribed') load();
    return () => {
      alive = false;
      sub.off('subscribed', load);
      sub.off('join', onJoin);
      sub.off('leave', onLeave);
      release();
    };
  }, [client, channel]);
  return members;
}

/** A publish function bound to the current client; it rejects while there is no client yet (server render). */
export function usePublish(): (channel: string, data: unknown) => Promise<void> {
  const client = useHerald();
  return useCallback(
    async (channel: string, data: unknown) => {
      if (!client) throw new Error('Herald is not connected yet');
      await client.publish(channel, data);
    },
    [client],
  );
}
