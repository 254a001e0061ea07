import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { encode } from 'next-auth/jwt';
import { createHerald, type Herald } from '@herald/server';
import { createHeraldClient, type Diagnosis } from '@herald/client';
import { CookieAuthConfigError, nextAuthCookieAuth } from '../src/herald.js';

const secret = 'cookie-test-nextauth-secret-0123456789abcdef';
const APP = 'http://app.test:3000';
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function heraldWithCookieAuth(): Promise<{ herald: Herald; url: string }> {
  const herald = createHerald({
    // The upgrade itself accepts both origins; the hook's own allowlist decides who may use the cookie.
    env: { HERALD_ALLOWED_ORIGINS: `${APP},http://other.test` },
    fileConfig: {
      channel: {
        namespaces: [
          { name: 'chat', presence: true, allow_subscribe_for_client: true, allow_presence_for_subscriber: true },
        ],
      },
    },
    logger: false,
    hooks: { onConnecting: nextAuthCookieAuth({ secret, allowedOrigins: [APP] }) },
  });
  const addr = await herald.listen(0, '127.0.0.1');
  cleanups.push(() => herald.close());
  return { herald, url: `ws://127.0.0.1:${addr.port}/ws` };
}

function clientWith(url: string, headers: Record<string, string>, origin?: string) {
  class Browserish extends WebSocket {
    constructor(u: string, protocols?: string | string[]) {
      super(u, protocols, origin ? { headers, origin } : { headers });
    }
  }
  const diagnoses: Diagnosis[] = [];
  const client = createHeraldClient({
    url,
    websocket: Browserish,
    diagnose: (d) => diagnoses.push(d),
    centrifuge: { minReconnectDelay: 50, maxReconnectDelay: 100 },
  });
  cleanups.push(() => client.disconnect());
  client.connect();
  return { client, diagnoses };
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a same-origin upgrade with the next-auth v4 session cookie connects as the session user, with no token', async () => {
  const { herald, url } = await heraldWithCookieAuth();
  const session = await encode({ token: { sub: 'alice', name: 'alice' }, secret });
  const { client } = clientWith(url, { Cookie: `next-auth.session-token=${session}` }, APP);
  await until('connected', () => client.state === 'connected');
  const { sub, release } = client.retain('chat:lobby');
  await until('subscribed', () => sub.state === 'subscribed');
  const presence = await herald.presence('chat:lobby');
  assert.deepEqual(
    [...presence.values()].map((c) => c.user),
    ['alice'],
  );
  release();
});

test('the cookie is ignored from an Origin outside the hook allowlist: the client is told it has no token', async () => {
  const { url } = await heraldWithCookieAuth();
  const session = await encode({ token: { sub: 'alice', name: 'alice' }, secret });
  const { client, diagnoses } = clientWith(url, { Cookie: `next-auth.session-token=${session}` }, 'http://other.test');
  await until('a diagnosis', () => diagnoses.length > 0);
  assert.equal(diagnoses[0]!.cause, 'token_missing');
  assert.equal(diagnoses[0]!.code, 101);
  assert.notEqual(client.state, 'connected');
  client.disconnect();
});

test('an upgrade that carries the session cookie but no Origin is refused with 403 before the upgrade', async () => {
  const { url } = await heraldWithCookieAuth();
  const session = await encode({ token: { sub: 'alice', name: 'alice' }, secret });
  const ws = new WebSocket(url, { headers: { Cookie: `next-auth.session-token=${session}` } });
  const status = await new Promise<number>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(101));
    ws.on('error', () => {});
  });
  ws.terminate();
  assert.equal(status, 403);
});

test('a cookie encrypted with another secret does not authenticate', async () => {
  const { url } = await heraldWithCookieAuth();
  const session = await encode({ token: { sub: 'mallory' }, secret: 'some-other-secret-0123456789abcdef0123' });
  const { diagnoses } = clientWith(url, { Cookie: `next-auth.session-token=${session}` }, APP);
  await until('a diagnosis', () => diagnoses.length > 0);
  assert.equal(diagnoses[0]!.cause, 'token_missing');
});

test('the hook builds without its options (as when next build loads the module) and refuses the first connection with a typed error', async () => {
  const ctx = {
    client: 'c1',
    token: undefined,
    transport: { headers: { origin: APP, cookie: 'next-auth.session-token=x' } },
  } as unknown as Parameters<ReturnType<typeof nextAuthCookieAuth>>[0];
  const noSecret = nextAuthCookieAuth({ secret: undefined, allowedOrigins: [APP] });
  await assert.rejects(
    noSecret(ctx),
    (e: unknown) => e instanceof CookieAuthConfigError && /no secret at run time: set NEXTAUTH_SECRET/.test(e.message),
  );
  await assert.rejects(nextAuthCookieAuth({ secret: '', allowedOrigins: [APP] })(ctx), CookieAuthConfigError);
  await assert.rejects(nextAuthCookieAuth({ secret, allowedOrigins: [] })(ctx), /Origin check/);
  await assert.rejects(nextAuthCookieAuth({ secret, allowedOrigins: ['*'] })(ctx), /not an exact origin/);
});
