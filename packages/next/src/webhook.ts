/**
 * Verifies Herald's lifecycle webhooks in a Next.js App Router route (docs/proxy.md, "Webhooks"). Web Crypto only,
 * so it runs on the Node.js and the Edge runtimes:
 *
 *   export async function POST(request: Request) {
 *     const events = await verifyWebhook(request, process.env.HERALD_WEBHOOK_SECRET!);
 *     for (const e of events) if (e.type === 'disconnect') await markOffline(e.user);
 *     return new Response(null, { status: 204 });
 *   }
 *
 * Herald signs `<x-herald-timestamp>.<raw body>` with HMAC-SHA256 and sends `x-herald-signature: sha256=<hex>`.
 * Events are delivered at least once: the same event (same `id`) may arrive again after a retry; deduplicate by id.
 */

export const WEBHOOK_SIGNATURE_HEADER = 'x-herald-signature';
export const WEBHOOK_TIMESTAMP_HEADER = 'x-herald-timestamp';

/** Every event carries these: `id` is unique and kept across retries, `time` is ms since the epoch. */
interface EventBase<T extends string> {
  id: string;
  type: T;
  time: number;
}

export interface ConnectEvent extends EventBase<'connect'> {
  client: string;
  user: string;
}
export interface DisconnectEvent extends EventBase<'disconnect'> {
  client: string;
  user: string;
  /** The close code (docs/codes.md), e.g. 3503 force disconnect, 3001 shutdown. */
  code: number;
  reason: string;
}
export interface SubscribeEvent extends EventBase<'subscribe'> {
  client: string;
  user: string;
  channel: string;
}
export interface UnsubscribeEvent extends EventBase<'unsubscribe'> {
  client: string;
  user: string;
  channel: string;
  /** 0 the client unsubscribed, 2000 the server, 2500 / 2501 resubscribing, else the connection's close code. */
  code: number;
  /** 'client', 'server', 'disconnect', 'insufficient_state' or 'expired'. */
  reason: string;
}
export interface ChannelOccupiedEvent extends EventBase<'channel_occupied'> {
  channel: string;
}
export interface ChannelVacatedEvent extends EventBase<'channel_vacated'> {
  channel: string;
}
export interface PresenceJoinEvent extends EventBase<'presence_join'> {
  channel: string;
  user: string;
}
export interface PresenceLeaveEvent extends EventBase<'presence_leave'> {
  channel: string;
  user: string;
}
export interface OutboxDeadLetterEvent extends EventBase<'outbox_dead_letter'> {
  outbox_id: string;
  partition: string;
  method: string;
  error: string;
  /** true: the row is in herald_outbox_dead; false: it stays in herald_outbox, skipped. */
  dead_letter_table: boolean;
}

export type HeraldWebhookEvent =
  | ConnectEvent
  | DisconnectEvent
  | SubscribeEvent
  | UnsubscribeEvent
  | ChannelOccupiedEvent
  | ChannelVacatedEvent
  | PresenceJoinEvent
  | PresenceLeaveEvent
  | OutboxDeadLetterEvent;

export type HeraldWebhookEventType = HeraldWebhookEvent['type'];

export interface VerifyWebhookOptions {
  /** How far the timestamp may be from now, in seconds (a captured request cannot be replayed later). @default 300 */
  toleranceSeconds?: number;
  /** The current time in ms (tests). @default Date.now */
  now?: () => number;
}

export type WebhookErrorReason =
  /** No secret given to verifyWebhook: a bug in the route, answered 500. */
  | 'no_secret'
  /** x-herald-signature or x-herald-timestamp missing or malformed. */
  | 'bad_headers'
  /** The timestamp is further from now than the tolerance (a replay, or a clock far off). */
  | 'stale'
  /** The signature does not match the body with this secret (tampered, or another secret). */
  | 'bad_signature'
  /** Signed correctly but not `{ events: [...] }`. */
  | 'bad_body';

/** Why a request is not a valid Herald webhook; `status` is what the route should answer. */
export class WebhookVerificationError extends Error {
  readonly reason: WebhookErrorReason;
  readonly status: number;
  constructor(reason: WebhookErrorReason, message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
    this.reason = reason;
    this.status = reason === 'no_secret' ? 500 : reason === 'bad_body' ? 400 : 401;
  }
}

const encoder = new TextEncoder();

function hexBytes(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(new ArrayBuffer(hex.length / 2));
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Checks a webhook request's signature and timestamp and returns its events. Reads the body (the request cannot be
 * read again). `secret` may list several secrets during a rotation: any one that verifies is accepted. The
 * comparison is Web Crypto's HMAC verify (constant time). Throws WebhookVerificationError; answer its `status`.
 */
export async function verifyWebhook(
  request: Request,
  secret: string | readonly string[],
  options: VerifyWebhookOptions = {},
): Promise<HeraldWebhookEvent[]> {
  const secrets = (typeof secret === 'string' ? [secret] : [...secret]).filter((s) => typeof s === 'string' && s);
  if (secrets.length === 0)
    throw new WebhookVerificationError(
      'no_secret',
      "verifyWebhook: no secret given; pass the `secret` of this endpoint in Herald's `webhooks` config (e.g. process.env.HERALD_WEBHOOK_SECRET)",
    );
  const timestamp = request.headers.get(WEBHOOK_TIMESTAMP_HEADER) ?? '';
  const signature = request.headers.get(WEBHOOK_SIGNATURE_HEADER) ?? '';
  const sig = /^sha256=([0-9a-f]{64})$/.exec(signature);
  if (!/^\d{1,12}$/.test(timestamp) || !sig)
    throw new WebhookVerificationError(
      'bad_headers',
      `not a Herald webhook: expected ${WEBHOOK_TIMESTAMP_HEADER} (unix seconds) and ${WEBHOOK_SIGNATURE_HEADER} (sha256=<hex>)`,
    );
  const tolerance = options.toleranceSeconds ?? 300;
  const nowSec = (options.now ?? Date.now)() / 1000;
  if (Math.abs(nowSec - Number(timestamp)) > tolerance)
    throw new WebhookVerificationError(
      'stale',
      `webhook timestamp ${timestamp} is more than ${tolerance} s from now: a replayed request, or this server's clock is off`,
    );
  const body = await request.text();
  const signed = encoder.encode(`${timestamp}.${body}`);
  const expected = hexBytes(sig[1]!);
  let valid = false;
  for (const s of secrets) {
    const key = await crypto.subtle.importKey('raw', encoder.encode(s), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'verify',
    ]);
    if (await crypto.subtle.verify('HMAC', key, expected, signed)) valid = true;
  }
  if (!valid)
    throw new WebhookVerificationError(
      'bad_signature',
      "webhook signature does not match: the body was changed, or the secret differs from the one in Herald's `webhooks` config",
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const events = (parsed as { events?: unknown } | undefined)?.events;
  if (!Array.isArray(events)) throw new WebhookVerificationError('bad_body', 'webhook body is not { "events": [...] }');
  return events as HeraldWebhookEvent[];
}
