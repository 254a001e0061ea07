/**
 * Lifecycle events Herald POSTs to the configured webhooks (docs/proxy.md, "Webhooks"). Every event carries a unique
 * `id` (kept across retries: deduplicate by it), its `type` and `time` (ms since the epoch, on the node that saw it),
 * then the fields of its type below. Field names are snake_case, as in the rest of Herald's JSON.
 */
export const WEBHOOK_EVENT_TYPES = [
  'connect',
  'disconnect',
  'subscribe',
  'unsubscribe',
  'channel_occupied',
  'channel_vacated',
  'presence_join',
  'presence_leave',
  'outbox_dead_letter',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The fields of each event type (besides id, type and time). */
export interface WebhookEventFields {
  /** A client connected (after its connect command was accepted). */
  connect: { client: string; user: string };
  /** A connected client's connection ended, with its close code and reason (docs/codes.md). */
  disconnect: { client: string; user: string; code: number; reason: string };
  /** A client subscription became active (client or server-side). */
  subscribe: { client: string; user: string; channel: string };
  /**
   * A client subscription ended. `code`: 0 the client unsubscribed, 2000 the server (API, refused refresh), 2500
   * insufficient state, 2501 expired, or the connection's close code when it ended with the connection. `reason`:
   * 'client', 'server', 'disconnect', 'insufficient_state' or 'expired'.
   */
  unsubscribe: { client: string; user: string; channel: string; code: number; reason: string };
  /** The channel's first subscriber across every node arrived. */
  channel_occupied: { channel: string };
  /** The channel's last subscriber across every node left. */
  channel_vacated: { channel: string };
  /** A user's first client entered the presence of a channel (a namespace with `presence`), across every node. */
  presence_join: { channel: string; user: string };
  /** A user's last client left the presence of a channel, across every node. */
  presence_leave: { channel: string; user: string };
  /** The outbox consumer gave up on a row (docs/outbox.md): moved to herald_outbox_dead, or skipped without that table. */
  outbox_dead_letter: {
    outbox_id: string;
    partition: string;
    method: string;
    error: string;
    /** true: the row is in herald_outbox_dead; false: it stays in herald_outbox, skipped (no dead-letter table). */
    dead_letter_table: boolean;
  };
}

export type WebhookEvent = {
  [T in WebhookEventType]: { id: string; type: T; time: number } & WebhookEventFields[T];
}[WebhookEventType];

/** Queues lifecycle events for the webhooks that asked for their type; a no-op for types nobody asked for. */
export interface WebhookEmitter {
  emit<T extends WebhookEventType>(type: T, fields: WebhookEventFields[T]): void;
  /** Whether some webhook asked for this type (to skip work for events nobody wants). */
  wants(type: WebhookEventType): boolean;
}
