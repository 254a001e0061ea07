import { randomUUID } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { HeraldHooks } from '../hooks.js';
import type { Logger } from '../logger.js';
import type { WebhookEmitter, WebhookEvent, WebhookEventFields, WebhookEventType } from './events.js';
import type { LifecycleTracker } from './lifecycle.js';
import { webhookMetrics, type WebhookMetrics } from './metrics.js';
import { WebhookSender, type WebhookTarget } from './sender.js';

export type { WebhookEvent, WebhookEventType, WebhookEventFields, WebhookEmitter } from './events.js';
export { WEBHOOK_EVENT_TYPES } from './events.js';
export type { WebhookTarget } from './sender.js';

/** The configured webhooks of one node: events go to every webhook that asked for their type. */
export class Webhooks implements WebhookEmitter {
  readonly metrics: WebhookMetrics | undefined;
  private readonly senders: { sender: WebhookSender; events: ReadonlySet<string> }[];
  private readonly wanted = new Set<string>();

  constructor(targets: readonly WebhookTarget[], registry: Registry, log: Logger) {
    const metrics =
      targets.length > 0
        ? webhookMetrics(registry, () => {
            const out = new Map<string, number>();
            for (const { sender } of this.senders) out.set(sender.label, (out.get(sender.label) ?? 0) + sender.pending);
            return out;
          })
        : undefined;
    this.metrics = metrics;
    const wlog = log.child({ component: 'webhooks' });
    this.senders = targets.map((t) => ({ sender: new WebhookSender(t, metrics!, wlog), events: new Set(t.events) }));
    for (const t of targets) for (const e of t.events) this.wanted.add(e);
  }

  wants(type: WebhookEventType): boolean {
    return this.wanted.has(type);
  }

  emit<T extends WebhookEventType>(type: T, fields: WebhookEventFields[T]): void {
    if (!this.wanted.has(type)) return;
    const event = { id: randomUUID(), type, time: Date.now(), ...fields } as WebhookEvent;
    for (const { sender, events } of this.senders) if (events.has(type)) sender.push(event);
  }

  /** Sends what is queued once more within `deadlineMs`; the rest is counted as dropped (shutdown). */
  async close(deadlineMs: number): Promise<void> {
    await Promise.all(this.senders.map(({ sender }) => sender.close(deadlineMs)));
  }
}

/**
 * The application's hooks with the lifecycle events added: connect, disconnect, subscribe and unsubscribe are sent
 * from the hooks' own seams (after the application's hook is called, whatever it does), and subscriptions feed the
 * occupied/vacated and presence tracker. The hooks unchanged when no webhook wants any of these.
 */
export function withWebhookEvents(
  hooks: HeraldHooks,
  emitter: WebhookEmitter,
  tracker: LifecycleTracker | undefined,
  hasPresence: (channel: string) => boolean,
): HeraldHooks {
  const client = ['connect', 'disconnect', 'subscribe', 'unsubscribe'] as const;
  if (!client.some((t) => emitter.wants(t)) && !tracker?.active) return hooks;
  return {
    ...hooks,
    onConnect(ctx) {
      emitter.emit('connect', { client: ctx.client, user: ctx.user });
      return hooks.onConnect?.(ctx);
    },
    onDisconnect(ctx) {
      emitter.emit('disconnect', { client: ctx.client, user: ctx.user, code: ctx.code, reason: ctx.reason });
      return hooks.onDisconnect?.(ctx);
    },
    onSubscribed(ctx) {
      emitter.emit('subscribe', { client: ctx.client, user: ctx.user, channel: ctx.channel });
      tracker?.subscribed(ctx.channel, ctx.user, hasPresence(ctx.channel));
      return hooks.onSubscribed?.(ctx);
    },
    onUnsubscribe(ctx) {
      emitter.emit('unsubscribe', {
        client: ctx.client,
        user: ctx.user,
        channel: ctx.channel,
        code: ctx.code,
        reason: ctx.reason,
      });
      tracker?.unsubscribed(ctx.channel, ctx.user, hasPresence(ctx.channel));
      return hooks.onUnsubscribe?.(ctx);
    },
  };
}
