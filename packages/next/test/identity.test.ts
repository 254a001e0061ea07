import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import WebSocket from 'ws';
import { EncryptJWT, decodeJwt } from 'jose';
import { encode } from 'next-auth/jwt';
import { createHerald, type Herald } from '@herald/server';
import { createTokenRoute, mintToken, TokenConfigError, type SessionLike } from '../src/index.js';
import { nextAuthCookieAuth } from '../src/herald.js';

/**
 * One account, one id (issue #21.2): the token route and the cookie hook both take the session JWT's `sub`, never
 * the email or the display name, which two accounts can share.
 */

const AUTH_SECRET = 'identity-test-nextauth-secret-0123456789abcdef';
const HERALD_SECRET = 'identity-test-herald-secret-0123456789abcdef01';
const APP = 'http://app.test:3000';
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** What next-auth v4's getServerSession and Auth.js v5's auth() return by default: name, email, image; no id. */
const defaultSession = (name: string, email: string | null = null): SessionLike => ({ user: { name, email } });

/** A next-auth v4 session cookie, encrypted by next-auth itself. */
async function v4Cookie(claims: Record<string, unknown>, secret = AUTH_SECRET): Promise<string> {
  return `next-auth.session-token=${await encode({ token: claims, secret })}`;
}

/** An Auth.js v5 session cookie (A256CBC-HS512, key from HKDF with the cookie name as salt), built independently here. */
async function v5Cookie(claims: Record<string, unknown>, secret = AUTH_SECRET): Promise<string> {
  const name = 'authjs.session-token';
  const key = new Uint8Array(hkdfSync('sha256', secret, name, `Auth.js Generated Encryption Key (${name})`, 64));
  const jwe = await new EncryptJWT(claims)
    .setProtectedHeader({ alg: 'dir', enc: 'A256CBC-HS512' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .encrypt(key);
  return `${name}=${jwe}`;
}

function request(cookie?: string): Request {
  return new Request('http://app.test:3000/api/herald/token', cookie ? { headers: { cookie } } : {});
}

/** The token route as an app would mount it: getSession stands for getServerSession(authOptions) / auth(). */
function route(session: SessionLike | null, extra: { sessionSecret?: string } = {}) {
  return createTokenRoute({ secret: HERALD_SECRET, sessionSecret: AUTH_SECRET, getSession: () => session, ...extra });
}

async function subjectFrom(res: Response): Promise<string | undefined> {
  assert.equal(res.status, 200, `the route answered ${res.status}: ${await res.clone().text()}`);
  const { token } = (await res.json()) as { token: string };
  return decodeJwt(token).sub;
}

async function startHerald(): Promise<{ herald: Herald; url: string }> {
  const herald = createHerald({
    env: { HERALD_TOKEN_SECRET: HERALD_SECRET, HERALD_ALLOWED_ORIGINS: APP },
    fileConfig: {
      channel: {
        namespaces: [
          {
            name: 'dm',
            allow_user_limited_channels: true,
            history_size: 10,
            history_ttl: '300s',
            allow_subscribe_for_client: true,
            allow_history_for_client: true,
            presence: true,
            allow_presence_for_client: true,
          },
        ],
      },
    },
    logger: false,
    hooks: { onConnecting: nextAuthCookieAuth({ secret: AUTH_SECRET, allowedOrigins: [APP] }) },
  });
  const addr = await herald.listen(0, '127.0.0.1');
  cleanups.push(() => herald.close());
  return { herald, url: `ws://127.0.0.1:${addr.port}/ws` };
}

type Reply = { id?: number; error?: { code: number; message: string }; [k: string]: unknown };

/** A raw protocol connection: sends commands, collects replies by id. */
async function connectRaw(
  url: string,
  how: { token?: string; cookie?: string },
): Promise<{ user: string; send: (cmd: Record<string, unknown>) => Promise<Reply> }> {
  const ws = new WebSocket(url, how.cookie ? { headers: { cookie: how.cookie }, origin: APP } : { origin: APP });
  cleanups.push(() => ws.terminate());
  const waiting = new Map<number, (r: Reply) => void>();
  ws.on('message', (data) => {
    for (const line of String(data).split('\n')) {
      if (line.trim() === '') continue;
      const r = JSON.parse(line) as Reply;
      if (typeof r.id === 'number') waiting.get(r.id)?.(r);
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let next = 1;
  const send = (cmd: Record<string, unknown>) =>
    new Promise<Reply>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(cmd)}`)), 5000);
      waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      ws.send(JSON.stringify({ id, ...cmd }));
    });
  const connected = await send({ connect: how.token ? { token: how.token } : {} });
  assert.equal(connected.error, undefined, `connect refused: ${JSON.stringify(connected.error)}`);
  // The connect reply has no user field; the user is what presence shows for this client.
  const client = (connected.connect as { client: string }).client;
  return { user: client, send };
}

async function userOf(herald: Herald, channel: string, client: string): Promise<string | undefined> {
  const presence = await herald.presence(channel);
  return presence.get(client)?.user;
}

test('two next-auth accounts named "Alice" with no email get different subjects from the token route', async () => {
  const first = await subjectFrom(
    await route(defaultSession('Alice'))(request(await v4Cookie({ sub: 'acct-1', name: 'Alice' }))),
  );
  const second = await subjectFrom(
    await route(defaultSession('Alice'))(request(await v4Cookie({ sub: 'acct-2', name: 'Alice' }))),
  );
  assert.equal(first, 'acct-1');
  assert.equal(second, 'acct-2');
});

test('two Auth.js v5 accounts reporting one email get different subjects from the token route', async () => {
  const first = await subjectFrom(
    await route(defaultSession('Alice', 'alice@x.test'))(
      request(await v5Cookie({ sub: 'uuid-1', email: 'alice@x.test' })),
    ),
  );
  const second = await subjectFrom(
    await route(defaultSession('Alice', 'alice@x.test'))(
      request(await v5Cookie({ sub: 'uuid-2', email: 'alice@x.test' })),
    ),
  );
  assert.deepEqual([first, second], ['uuid-1', 'uuid-2']);
});

test('with no session JWT and no user id the route refuses with HERALD_TOKEN_CONFIG naming the fix, never using the email or name', async () => {
  const res = await route(defaultSession('Alice', 'alice@x.test'))(request());
  assert.equal(res.status, 500);
  const body = (await res.json()) as { error: string; code: string; message: string };
  assert.equal(body.code, 'HERALD_TOKEN_CONFIG');
  assert.equal(body.error, 'no_subject');
  assert.match(body.message, /subject/);
  assert.doesNotMatch(body.message, /alice@x\.test/);
  // A session JWT without sub (and, separately, a database session's opaque cookie) is refused the same way.
  const noSub = await route(defaultSession('Alice', 'alice@x.test'))(
    request(await v4Cookie({ name: 'Alice', email: 'alice@x.test' })),
  );
  assert.equal(noSub.status, 500);
  assert.equal(((await noSub.json()) as { error: string }).error, 'no_subject');
  const database = await route(defaultSession('Alice'))(
    request('next-auth.session-token=5b0c6d3e-0000-4000-8000-000000000000'),
  );
  assert.equal(((await database.json()) as { error: string }).error, 'no_subject');
  await assert.rejects(
    mintToken(defaultSession('Alice', 'alice@x.test'), { secret: HERALD_SECRET }, request()),
    (e: unknown) => e instanceof TokenConfigError && e.reason === 'no_subject',
  );
});

test('a session cookie the route cannot open names sessionSecret; a session.user.id that contradicts the JWT sub is refused', async () => {
  const wrong = await createTokenRoute({ secret: HERALD_SECRET, getSession: () => defaultSession('Alice') })(
    request(await v4Cookie({ sub: 'acct-1' })),
  );
  assert.equal(wrong.status, 500);
  const body = (await wrong.json()) as { error: string; message: string };
  assert.equal(body.error, 'session_secret');
  assert.match(body.message, /sessionSecret/);
  const mismatch = await route({ user: { id: 'someone-else', name: 'Alice' } })(
    request(await v4Cookie({ sub: 'acct-1' })),
  );
  assert.equal(((await mismatch.json()) as { error: string }).error, 'subject_mismatch');
  // The same id on both sides is fine (the usual session callback: session.user.id = token.sub).
  assert.equal(
    await subjectFrom(
      await route({ user: { id: 'acct-1', name: 'Alice' } })(request(await v4Cookie({ sub: 'acct-1' }))),
    ),
    'acct-1',
  );
});

test('the token route and the cookie hook give one person the same id on a real Herald, for next-auth v4 and Auth.js v5', async () => {
  const { herald, url } = await startHerald();
  for (const cookie of [
    await v4Cookie({ sub: 'acct-1', name: 'Alice', email: 'alice@x.test' }),
    await v5Cookie({ sub: 'acct-1', name: 'Alice', email: 'alice@x.test' }),
  ]) {
    const res = await route(defaultSession('Alice', 'alice@x.test'))(request(cookie));
    const { token } = (await res.json()) as { token: string };
    const viaRoute = await connectRaw(url, { token });
    const viaCookie = await connectRaw(url, { cookie });
    const channel = 'dm:lobby';
    assert.equal((await viaRoute.send({ subscribe: { channel } })).error, undefined);
    assert.equal((await viaCookie.send({ subscribe: { channel } })).error, undefined);
    assert.equal(await userOf(herald, channel, viaRoute.user), 'acct-1');
    assert.equal(await userOf(herald, channel, viaCookie.user), 'acct-1');
    await viaRoute.send({ unsubscribe: { channel } });
    await viaCookie.send({ unsubscribe: { channel } });
  }
});

test('an account cannot read the user-limited channel of another account with the same name, live or from history', async () => {
  const { herald, url } = await startHerald();
  const tokenFor = async (sub: string) => {
    const res = await route(defaultSession('Alice'))(request(await v4Cookie({ sub, name: 'Alice' })));
    return ((await res.json()) as { token: string }).token;
  };
  const owner = await connectRaw(url, { token: await tokenFor('acct-1') });
  // The owner's inbox is named by the id Herald gave the owner's connection.
  const probe = 'dm:lobby';
  assert.equal((await owner.send({ subscribe: { channel: probe } })).error, undefined);
  const ownerId = await userOf(herald, probe, owner.user);
  assert.ok(ownerId);
  const inbox = `dm:inbox#${ownerId}`;
  await herald.publish(inbox, { text: 'for the first Alice only' });
  const own = await owner.send({ subscribe: { channel: inbox, recover: false } });
  assert.equal(own.error, undefined);
  assert.equal(
    ((await owner.send({ history: { channel: inbox, limit: 10 } })).history as { publications: unknown[] }).publications
      .length,
    1,
  );

  const other = await connectRaw(url, { token: await tokenFor('acct-2') });
  const sub = await other.send({ subscribe: { channel: inbox } });
  assert.equal(sub.error?.code, 103);
  const history = await other.send({ history: { channel: inbox, limit: 10 } });
  assert.equal(history.error?.code, 103);
  assert.equal(JSON.stringify(history).includes('for the first Alice only'), false);
});

test('the cookie hook never takes the email: a session JWT without sub does not authenticate and is reported', async () => {
  const rejected: string[] = [];
  const herald = createHerald({
    env: { HERALD_TOKEN_SECRET: HERALD_SECRET, HERALD_ALLOWED_ORIGINS: APP },
    logger: false,
    hooks: {
      onConnecting: nextAuthCookieAuth({
        secret: AUTH_SECRET,
        allowedOrigins: [APP],
        onRejected: (reason) => rejected.push(reason),
      }),
    },
  });
  const addr = await herald.listen(0, '127.0.0.1');
  cleanups.push(() => herald.close());
  const ws = new WebSocket(`ws://127.0.0.1:${addr.port}/ws`, {
    headers: { cookie: await v4Cookie({ name: 'Alice', email: 'alice@x.test' }) },
    origin: APP,
  });
  cleanups.push(() => ws.terminate());
  const reply = await new Promise<Reply>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no reply to connect')), 5000);
    ws.on('message', (data) => {
      clearTimeout(timer);
      resolve(JSON.parse(String(data).split('\n')[0]!) as Reply);
    });
    ws.once('open', () => ws.send(JSON.stringify({ id: 1, connect: {} })));
  });
  assert.equal(reply.error?.code, 101);
  assert.deepEqual(rejected, ['no_sub']);
});
