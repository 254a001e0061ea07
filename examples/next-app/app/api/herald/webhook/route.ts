// Herald's lifecycle webhooks (docs/proxy.md, "Webhooks"; configured in the `webhooks` list of Herald's config, which
// the example's scripts write into .herald/herald.json). A `disconnect` stores when the user was last seen, and the
// change is published through the outbox so open pages update their "last seen" at once.
import { verifyWebhook, WebhookVerificationError, type HeraldWebhookEvent } from '@herald/next';
import { webhookSecret } from '@/lib/auth';
import { markLastSeen } from '@/lib/store';

export const dynamic = 'force-dynamic';

export async function POST(request: Request): Promise<Response> {
  let events: HeraldWebhookEvent[];
  try {
    events = await verifyWebhook(request, webhookSecret());
  } catch (err) {
    if (err instanceof WebhookVerificationError) return new Response(err.message, { status: err.status });
    throw err;
  }
  // At least once and in any order: markLastSeen only moves lastSeen forward, so a repeated event is a no-op.
  for (const e of events) if (e.type === 'disconnect' && e.user) await markLastSeen(e.user, new Date(e.time));
  return new Response(null, { status: 204 });
}
