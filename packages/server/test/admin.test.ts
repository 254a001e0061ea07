// The admin UI's server side over real HTTP and WebSocket: configuration checks, login (cookie attributes, wrong
// password, rate limit), the session and Origin checks on every admin request, the API calls it reuses, and its own
// Herald connection to $admin:stats.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { newClient, startHerald, waitFor, mintToken, type TestServer } from './support/herald.js';

const PASSWORD = 'correct horse battery staple';
const ADMIN_SECRET = 'admin-secret-for-tests-0123456789';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('admin configuration', () => {
  test('enabling the admin UI without a password refuses to start and names admin.password', () => {
    const problems = problemsOf(() =>
      loadConfig({ env: { HERALD_ADMIN_ENABLED: 'true', HERALD_ADMIN_SECRET: ADMIN_SECRET } }),
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /admin\.password is not set: set HERALD_ADMIN_PASSWORD/);
  });

  test('enabling the admin UI without a secret refuses to start and names admin.secret', () => {
    const problems = problemsOf(() => loadConfig({ fileConfig: { admin: { enabled: true, password: PASSWORD } } }));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /admin\.secret is not set: set HERALD_ADMIN_SECRET/);
  });

  test('a short secret is refused with its length', () => {
    const problems = problemsOf(() =>
      loadConfig({ env: { HERALD_ADMIN_ENABLED: '1', HERALD_ADMIN_PASSWORD: PASSWORD, HERALD_ADMIN_SECRET: 'short' } }),
    );
    assert.match(problems.join('\n'), /admin\.secret is 5 characters/);
  });

  test('a misspelt admin key in the file is refused with the key meant', () => {
    const problems = problemsOf(() => loadConfig({ fileConfig: { admin: { enabled: true, pasword: PASSWORD } } }));
    assert.ok(problems.some((p) => p.includes('admin.pasword: unknown option; did you mean "admin.password"?')));
  });

  test('a misspelt admin key in explicit settings is refused with the key meant', () => {
    const problems = problemsOf(() => loadConfig({ overrides: { admin: { enabeld: true } as never } }));
    assert.ok(problems.some((p) => p.includes('admin.enabeld: unknown option; did you mean "admin.enabled"?')));
  });

  test('admin.insecure starts without a password, with a warning', () => {
    const c = loadConfig({ fileConfig: { admin: { enabled: true, insecure: true, handler_prefix: '/ops/' } } });
    assert.equal(c.admin.insecure, true);
    assert.equal(c.admin.path, '/ops');
    assert.ok(c.warnings.some((w) => /admin\.insecure is on/.test(w)));
  });

  test('the admin UI is off by default', () => {
    const c = loadConfig({});
    assert.equal(c.admin.enabled, false);
    assert.equal(c.admin.path, '/admin');
  });
});

describe('admin HTTP endpoints', () => {
  let server: TestServer;
  let origin: string;

  before(async () => {
    server = await startHerald({
      env: {
        HERALD_ADMIN_ENABLED: 'true',
        HERALD_ADMIN_PASSWORD: PASSWORD,
        HERALD_ADMIN_SECRET: ADMIN_SECRET,
        HERALD_CLIENT_INSECURE: 'true',
      },
      config: { channel: { namespaces: { chat: { allow_subscribe_for_client: true } } } },
    });
    origin = server.httpUrl;
  });
  after(() => server.close());

  async function post(route: string, body: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(`${server.httpUrl}/admin/api/${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin, ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as any };
  }

  /** Logs in; the session cookie as a Cookie header value. */
  async function login(): Promise<string> {
    const r = await post('login', { password: PASSWORD });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.headers.get('set-cookie')!.split(';')[0]!;
  }

  test('a wrong password is refused with 401 and no cookie; the right one sets a HttpOnly SameSite=Strict cookie', async () => {
    const wrong = await post('login', { password: 'nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, 101);
    assert.equal(wrong.headers.get('set-cookie'), null);
    const right = await post('login', { password: PASSWORD });
    assert.equal(right.status, 200);
    const cookie = right.headers.get('set-cookie')!;
    assert.match(cookie, /^herald_admin=[^;]+; Path=\/admin; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    assert.doesNotMatch(cookie, /Secure/);
  });

  test('the cookie is Secure when the request came over TLS (X-Forwarded-Proto: https)', async () => {
    const r = await post('login', { password: PASSWORD }, { 'x-forwarded-proto': 'https' });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('set-cookie')!, /; Secure$/);
  });

  test('an admin call without the session cookie is refused with 401', async () => {
    const r = await post('call/info', {});
    assert.equal(r.status, 401);
    assert.match(r.body.error.message, /log in to the admin UI first/);
  });

  test('an admin call with a forged or tampered cookie is refused with 401', async () => {
    const cookie = await login();
    const tampered = cookie.replace(/=(\d)/, (_m, d: string) => `=${(Number(d) + 1) % 10}`);
    assert.equal((await post('call/info', {}, { cookie: tampered })).status, 401);
    assert.equal((await post('call/info', {}, { cookie: 'herald_admin=1.2.3' })).status, 401);
    // The same signature bytes written with other unused bits in the last character (32 bytes: 2 bits unused).
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = cookie.at(-1)!;
    const twin = alphabet[(alphabet.indexOf(last) & ~3) + ((alphabet.indexOf(last) + 1) % 4)]!;
    assert.equal((await post('call/info', {}, { cookie: cookie.slice(0, -1) + twin })).status, 401);
    assert.equal((await post('call/info', {}, { cookie })).status, 200);
  });

  test('an admin call from a foreign Origin, or without one, is refused with 403 even with the cookie', async () => {
    const cookie = await login();
    const foreign = await post('call/info', {}, { cookie, origin: 'http://evil.example' });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.body.error.code, 103);
    const res = await fetch(`${server.httpUrl}/admin/api/call/info`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie },
      body: '{}',
    });
    assert.equal(res.status, 403);
    const login403 = await post('login', { password: PASSWORD }, { origin: 'http://evil.example' });
    assert.equal(login403.status, 403);
  });

  test('with the cookie from the same origin the admin runs the server API methods: info, publish, history, channels', async () => {
    const cookie = await login();
    const info = await post('call/info', {}, { cookie });
    assert.equal(info.status, 200);
    assert.equal(info.body.result.nodes.length, 1);
    const pub = await post('call/publish', { channel: 'chat:admin', data: { text: 'hi' } }, { cookie });
    assert.equal(pub.status, 200, JSON.stringify(pub.body));
    const unknown = await post('call/nope', {}, { cookie });
    assert.equal(unknown.status, 404);
    const bad = await post('call/publish', { channel: 'nons:x', data: {} }, { cookie });
    assert.equal(bad.body.error.code, 102);
  });

  test('the page is served under /admin/ with a Content-Security-Policy that allows no other origin', async () => {
    const res = await fetch(`${server.httpUrl}/admin/`);
    assert.equal(res.status, 200, 'the UI is built by npm run build (packages/admin -> packages/server/admin-ui)');
    assert.match(res.headers.get('content-type')!, /text\/html/);
    assert.match(res.headers.get('content-security-policy')!, /default-src 'self'/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    const html = await res.text();
    const asset = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, html);
    const js = await fetch(`${server.httpUrl}/admin/${asset}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('cache-control')!, /immutable/);
    assert.equal((await fetch(`${server.httpUrl}/admin/../package.json`)).status, 404);
    const redirect = await fetch(`${server.httpUrl}/admin`, { redirect: 'manual' });
    assert.equal(redirect.status, 308);
  });

  test('GET requests on the API and other methods than POST are refused', async () => {
    const res = await fetch(`${server.httpUrl}/admin/api/call/info`);
    assert.equal(res.status, 405);
  });

  test('the connections endpoint lists a user’s connections on this node with transport and subscriptions', async () => {
    const cookie = await login();
    const c = newClient(server.wsUrl, { token: await mintToken({ sub: 'alice' }) });
    const sub = c.newSubscription('chat:room');
    sub.subscribe();
    c.connect();
    try {
      await new Promise<void>((r) => sub.once('subscribed', () => r()));
      const r = await post('connections', { user: 'alice' }, { cookie });
      assert.equal(r.status, 200);
      const conns = r.body.result.connections;
      assert.equal(conns.length, 1);
      assert.equal(conns[0].user, 'alice');
      assert.equal(conns[0].transport, 'websocket');
      assert.deepEqual(conns[0].subscriptions, ['chat:room']);
    } finally {
      c.disconnect();
    }
  });

  test('the admin connection token connects the SDK, which then receives every second a $admin:stats snapshot', async () => {
    const cookie = await login();
    const t = await post('token', {}, { cookie });
    assert.equal(t.status, 200);
    const c = newClient(server.wsUrl, { token: t.body.token });
    const snapshots: any[] = [];
    c.on('publication', (ctx) => {
      if (ctx.channel === '$admin:stats') snapshots.push(ctx.data);
    });
    c.connect();
    try {
      await waitFor(() => snapshots.length >= 1, 'a $admin:stats snapshot', 5000);
      const s = snapshots[0];
      assert.equal(s.v, 1);
      assert.equal(typeof s.node.uid, 'string');
      assert.ok(s.node.num_clients >= 1);
      assert.equal(typeof s.messages_in, 'number');
    } finally {
      c.disconnect();
    }
  });

  test('a client cannot subscribe to $admin:stats, even with client.insecure and a subscription token', async () => {
    const c = newClient(server.wsUrl, { token: await mintToken({ sub: 'mallory' }) });
    const sub = c.newSubscription('$admin:stats', {
      token: await mintToken({ sub: 'mallory', channel: '$admin:stats' }),
    });
    const refused = new Promise<number>((r) => sub.on('unsubscribed', (ctx) => r(ctx.code)));
    sub.subscribe();
    c.connect();
    try {
      assert.equal(await refused, 103);
    } finally {
      c.disconnect();
    }
  });

  test('a token that claims the admin audience but is signed with another key is refused with 3500', async () => {
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('$admin')
      .setAudience('herald-admin')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('not-the-admin-secret-at-all'));
    const c = newClient(server.wsUrl, { token: forged });
    const closed = new Promise<number>((r) => c.on('disconnected', (ctx) => r(ctx.code)));
    c.connect();
    try {
      assert.equal(await closed, 3500);
    } finally {
      c.disconnect();
    }
  });
});

describe('admin login rate limit', () => {
  test('failed logins are limited per IP: after five wrong passwords even the right one is answered 429 with Retry-After', async () => {
    const server = await startHerald({
      env: { HERALD_ADMIN_ENABLED: 'true', HERALD_ADMIN_PASSWORD: PASSWORD, HERALD_ADMIN_SECRET: ADMIN_SECRET },
    });
    const login = (password: string) =>
      fetch(`${server.httpUrl}/admin/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: server.httpUrl },
        body: JSON.stringify({ password }),
      });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await login(`guess-${i}`)).status);
      assert.deepEqual(statuses, [401, 401, 401, 401, 401]);
      const r = await login(PASSWORD);
      assert.equal(r.status, 429, 'the right password is not even checked past the limit');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    } finally {
      await server.close();
    }
  });
});

describe('admin UI disabled', () => {
  test('the admin path is an ordinary 404 when admin.enabled is off', async () => {
    const server = await startHerald({});
    try {
      const res = await fetch(`${server.httpUrl}/admin/`);
      assert.equal(res.status, 404);
      const api = await fetch(`${server.httpUrl}/admin/api/login`, { method: 'POST', body: '{}' });
      assert.equal(api.status, 404);
    } finally {
      await server.close();
    }
  });
});
