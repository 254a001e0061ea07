// Proxy mode (HERALD_AUTH=proxy): Herald's proxies answered by this app (docs/proxy.md). Herald POSTs to
// /api/herald/proxy/<kind> (app/api/herald/proxy/[kind]/route.ts) with X-Herald-Proxy-Secret; createProxyHandlers
// refuses a call without it (401) before any of these functions runs.
//
// Nothing here logs a request, its headers or the session: the Cookie header Herald forwards is a credential.
import { NextRequest } from 'next/server';
import { getToken } from 'next-auth/jwt';
import { createProxyHandlers, proxyDisconnect, proxyError } from '@herald/next';
import { authSecret, heraldApi, proxySecret } from './auth';
import { CHANNEL, ONLINE_RPC, PUBLISH_REFUSALS, validateText, type ChatEvent, type OnlineResult } from './chat';
import { storeMessage } from './store';

/** Who is in chat:lobby's presence now, from Herald's HTTP API (every node's, with the Redis engine). */
async function onlineUsers(): Promise<string[] | undefined> {
  const { url, key } = heraldApi();
  const res = await fetch(`${url}/api/presence`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ channel: CHANNEL }),
    signal: AbortSignal.timeout(2000),
    cache: 'no-store',
  });
  const body = (await res.json().catch(() => null)) as {
    result?: { presence: Record<string, { user: string }> };
  } | null;
  if (!res.ok || !body?.result) return undefined;
  return [...new Set(Object.values(body.result.presence).map((p) => p.user))].sort();
}

export const proxy = createProxyHandlers(
  {
    /**
     * A connect without a token: the user is the NextAuth session's `sub` (the id authorize() returned, as the
     * token route uses), read from the Cookie header Herald forwarded (`http_headers: ["Cookie"]`) and decrypted with
     * NEXTAUTH_SECRET. A visitor with no session (or an expired or foreign one) is closed with 4501: terminal, the
     * client does not retry.
     */
    async connect(_req, { request }) {
      // A header-only copy: getToken reads NextRequest's parsed cookies (the body was read by createProxyHandlers).
      const session = await getToken({
        req: new NextRequest(request.url, { headers: request.headers }),
        secret: authSecret(),
      });
      if (typeof session?.sub !== 'string' || session.sub === '') return proxyDisconnect(4501, 'sign in first');
      return { result: { user: session.sub } };
    },

    /**
     * A browser's publish to chat:lobby: the same validation as POST /api/messages (lib/chat.ts), refused with an
     * error the page shows; an accepted message is stored first (so a reload shows it), then Herald publishes what
     * this answers: the stored message with its database id, as the outbox path does.
     */
    async publish({ channel, user, data }) {
      if (channel !== CHANNEL || user === '')
        return proxyError(PUBLISH_REFUSALS.unauthenticated, `Only signed-in users may write in ${CHANNEL}.`);
      const checked = validateText((data as { text?: unknown } | null)?.text);
      if ('error' in checked) return proxyError(PUBLISH_REFUSALS[checked.error.code], checked.error.message);
      const message = await storeMessage(user, checked.text);
      const event: ChatEvent = { type: 'message', message };
      return { result: { data: event, idempotency_key: `chat-message-${message.id}` } };
    },

    /** `online`: the users in chat:lobby's presence. */
    async rpc({ method }) {
      if (method !== ONLINE_RPC) return proxyError(1404, `Unknown method ${JSON.stringify(method ?? '')}.`);
      const users = await onlineUsers();
      if (!users) return proxyError(1503, "Herald's presence could not be read; try again.", true);
      const result: OnlineResult = { users };
      return { result: { data: result } };
    },
  },
  { secret: proxySecret() },
);
