'use client';
import { useCallback, useEffect, useRef, useState } from 'react';
import { HeraldClientError, type PublicationContext } from '@herald/client';
import { useHerald } from './context.js';

export type SubscriptionStatus = 'unsubscribed' | 'subscribing' | 'subscribed';

/** A channel subscription as a page shows it. */
export interface ChannelState {
  status: SubscriptionStatus;
  /**
   * Why Herald refused or ended the subscription: `code` (102 unknown channel, 103 permission denied, 109 token
   * expired again, 2000 server unsubscribe, ... as in @herald/server/docs/codes.md), `message` (with the server's
   * reason) and `fix`. Absent while all is well; cleared when it subscribes again. A terminal refusal leaves
   * `status` 'unsubscribed'; a temporary one (100, 111, 109) leaves it 'subscribing' while the SDK retries.
   */
  error?: HeraldClientError | undefined;
}

const idle: ChannelState = { status: 'unsubscribed' };

/**
 * Subscribes to `channel` while mounted and calls `onPublication` for each publication, including those the SDK
 * recovers after a reconnect (in order, each once). The latest callback is always used; it need not be memoized.
 * Returns the status and, when Herald refused the subscription, the typed error (also printed once in the console).
 */
export function useChannel(channel: string, onPublication?: (pub: PublicationContext) => void): ChannelState {
  const client = useHerald();
  const [state, setState] = useState<ChannelState>(idle);
  const handler = useRef(onPublication);
  handler.current = onPublication;
  useEffect(() => {
    if (!client) return;
    const { sub, release, error, onError } = client.retain(channel);
    const onPub = (ctx: PublicationContext) => handler.current?.(ctx);
    const update = () => {
      const status = sub.state as SubscriptionStatus;
      const e = error();
      setState((prev) =>
        prev.status === status && prev.error === e ? prev : e === undefined ? { status } : { status, error: e },
      );
    };
    sub.on('publication', onPub);
    sub.on('state', update);
    const offError = onError(update);
    update();
    return () => {
      sub.off('publication', onPub);
      sub.off('state', update);
      offError();
      release();
      setState(idle);
    };
  }, [client, channel]);
  return state;
}

/**
 * `useChannel` returning the status alone: 'unsubscribed' | 'subscribing' | 'subscribed'. A refusal prints its cause
 * and fix in the console; use `useChannel` to show it on the page.
 */
export function useSubscription(
  channel: string,
  onPublication?: (pub: PublicationContext) => void,
): SubscriptionStatus {
  return useChannel(channel, onPublication).status;
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
    // Joins and leaves that arrive while a presence request is in flight: the answer may be a snapshot taken before
    // them (on Redis the read and the join's fan-out race), so they are applied again on top of it.
    let arrivedDuringLoad: (() => void)[] | undefined;
    let loads = 0;
    const apply = (change: () => void) => {
      change();
      arrivedDuringLoad?.push(change);
      publish();
    };
    const load = () => {
      const n = ++loads;
      const arrived: (() => void)[] = [];
      arrivedDuringLoad = arrived;
      // A refusal (108 presence off, 103) is printed once by the client, with its fix.
      client.presence(channel).then(
        (r) => {
          if (!alive || n !== loads) return;
          arrivedDuringLoad = undefined;
          byClient.clear();
          for (const [id, c] of Object.entries(r.clients)) byClient.set(id, { user: c.user, info: c.connInfo });
          for (const change of arrived) change();
          publish();
        },
        () => {
          // Presence not allowed or a transient error: keep what is shown; the next subscribe reloads it.
          if (n === loads) arrivedDuringLoad = undefined;
        },
      );
    };
    const onJoin = (ctx: { info: { client: string; user: string; connInfo?: unknown } }) => {
      const { client: id, user, connInfo } = ctx.info;
      apply(() => byClient.set(id, { user, info: connInfo }));
    };
    const onLeave = (ctx: { info: { client: string } }) => {
      const id = ctx.info.client;
      apply(() => byClient.delete(id));
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

/**
 * A publish function bound to the current client. It rejects with a `HeraldClientError` (`code`, `message`, `fix`):
 * Herald's refusal (103 permission denied, 102, ...; also printed once in the console), an SDK failure (1 timeout),
 * or code 0 while there is no client yet (server render, before the provider mounted).
 */
export function usePublish(): (channel: string, data: unknown) => Promise<void> {
  const client = useHerald();
  return useCallback(
    async (channel: string, data: unknown) => {
      if (!client) {
        throw new HeraldClientError({
          operation: 'publish',
          channel,
          code: 0,
          reason: 'Herald is not connected yet',
          fix: 'publish from an event handler or an effect, after <HeraldProvider> has mounted',
        });
      }
      await client.publish(channel, data);
    },
    [client],
  );
}
