import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { createTokenRoute, mintToken, TokenConfigError } from '../src/index.js';

const secret = 'route-test-secret-0123456789abcdef0123456789';
const key = new TextEncoder().encode(secret);

test('mintToken signs HS256 with sub from the session, a short exp, and the name as connection info', async () => {
  const before = Math.floor(Date.now() / 1000);
  const t = await mintToken(
    { user: { id: 'alice', name: 'alice', email: null } },
    { secret, ttlSeconds: 60, audience: 'herald', issuer: 'app' },
  );
  assert.equal(decodeProtectedHeader(t).alg, 'HS256');
  const { payload } = await jwtVerify(t, key, { audience: 'herald', issuer: 'app' });
  assert.equal(payload.sub, 'alice');
  assert.deepEqual(payload.info, { name: 'alice' });
  assert.ok(payload.exp! >= before + 60 && payload.exp! <= before + 62);
});

test('without the request the subject is session.user.id or the subject option, never the email or the name', async () => {
  const s = { user: { id: 'u1', email: 'a@x.test', name: 'alice' } };
  assert.equal(decodeJwt(await mintToken(s, { secret })).sub, 'u1');
  await assert.rejects(
    mintToken({ user: { email: 'a@x.test', name: 'alice' } }, { secret }),
    (e: unknown) =>
      e instanceof TokenConfigError &&
      e.reason === 'no_subject' &&
      /mintToken\(session, options, request\)/.test(e.message),
  );
  assert.equal(decodeJwt(await mintToken(s, { secret, subject: (x) => `user:${x.user?.id}` })).sub, 'user:u1');
});

test('a missing secret or a session without a user id is refused with a message that says what to pass', async () => {
  await assert.rejects(
    mintToken({ user: { name: 'a' } }, { secret: '' }),
    (e: unknown) => e instanceof TokenConfigError && /HERALD_TOKEN_SECRET/.test(e.message),
  );
  await assert.rejects(mintToken({ user: {} }, { secret }), /subject/);
});

/** Runs fn with console.error captured; returns what it printed. */
async function consoleErrors(fn: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void lines.push(args.map(String).join(' '));
  try {
    await fn();
  } finally {
    console.error = original;
  }
  return lines;
}

test('a route module loaded with no secret imports cleanly; its first request answers 500 naming NEXTAUTH_SECRET and logs it once', async () => {
  const saved = process.env.NEXTAUTH_SECRET;
  delete process.env.NEXTAUTH_SECRET;
  try {
    // What `next build` does: load the module without the run-time environment. It must not throw.
    const { GET } = await import('./fixtures/token-route-module.js');
    const bodies: Array<{ error: string; code: string; message: string }> = [];
    const logged = await consoleErrors(async () => {
      for (let i = 0; i < 3; i++) {
        const res = await GET(new Request('http://app.test/api/herald/token'));
        assert.equal(res.status, 500);
        assert.equal(res.headers.get('cache-control'), 'no-store');
        bodies.push((await res.json()) as { error: string; code: string; message: string });
      }
    });
    for (const body of bodies) {
      assert.equal(body.error, 'token_config');
      assert.equal(body.code, 'HERALD_TOKEN_CONFIG');
      assert.match(body.message, /no secret at run time: set NEXTAUTH_SECRET/);
      assert.match(body.message, /next build does not need it/);
    }
    assert.equal(logged.length, 1, `logged: ${JSON.stringify(logged)}`);
    assert.equal(logged[0], `[herald] HERALD_TOKEN_CONFIG: ${bodies[0]!.message}`);
  } finally {
    if (saved !== undefined) process.env.NEXTAUTH_SECRET = saved;
  }
});

test('other bad route options are answered at the request too, as typed token_config errors, not thrown at load', async () => {
  const cases: Array<[Parameters<typeof createTokenRoute>[0], RegExp]> = [
    [{ secret, getSession: undefined as never }, /createTokenRoute needs \{ getSession \}/],
    [{ secret, ttlSeconds: 0, getSession: () => null }, /ttlSeconds must be a positive number/],
    [{ secret, sessionSecret: [], getSession: () => null }, /sessionSecret must be/],
  ];
  await consoleErrors(async () => {
    for (const [options, message] of cases) {
      const GET = createTokenRoute(options);
      const res = await GET(new Request('http://app.test/api/herald/token'));
      assert.equal(res.status, 500);
      const body = (await res.json()) as { error: string; code: string; message: string };
      assert.equal(body.error, 'token_config');
      assert.equal(body.code, new TokenConfigError('x').code);
      assert.match(body.message, message);
    }
  });
});

test('the route answers 401 when signed out and a fresh token when signed in, never cached', async () => {
  let session: { user: { id: string; name: string } } | null = null;
  const GET = createTokenRoute({ secret, getSession: () => session });
  const out = await GET(new Request('http://app.test/api/herald/token'));
  assert.equal(out.status, 401);
  assert.equal((await out.json()).error, 'not_signed_in');
  session = { user: { id: 'bob', name: 'bob' } };
  const ok = await GET(new Request('http://app.test/api/herald/token'));
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('cache-control'), 'no-store');
  const body = (await ok.json()) as { token: string; expires: number };
  assert.equal((await jwtVerify(body.token, key)).payload.sub, 'bob');
  assert.ok(body.expires > Date.now() / 1000);
});
