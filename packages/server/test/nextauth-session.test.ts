import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { EncryptJWT, type JWTPayload } from 'jose';
import { decodeNextAuthSession, inspectNextAuthSession, parseCookieHeader } from '../src/auth/nextauth-session.js';

const SECRET = 'nextauth-test-secret-with-enough-entropy';

/** next-auth v4's key: HKDF-SHA256(secret, salt "", info "NextAuth.js Generated Encryption Key", 32 bytes). */
function v4Key(secret: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', secret, '', 'NextAuth.js Generated Encryption Key', 32));
}

/** Auth.js v5's key: salt = cookie name, info names the salt, 64 bytes for A256CBC-HS512, 32 for A256GCM. */
function v5Key(secret: string, salt: string, enc: 'A256CBC-HS512' | 'A256GCM'): Uint8Array {
  const len = enc === 'A256CBC-HS512' ? 64 : 32;
  return new Uint8Array(hkdfSync('sha256', secret, salt, `Auth.js Generated Encryption Key (${salt})`, len));
}

async function v4Token(claims: JWTPayload, secret = SECRET, expiresIn: string | number = '30d'): Promise<string> {
  return new EncryptJWT(claims)
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .setJti('jti-1')
    .encrypt(v4Key(secret));
}

async function v5Token(
  claims: JWTPayload,
  cookieName: string,
  enc: 'A256CBC-HS512' | 'A256GCM' = 'A256CBC-HS512',
  secret = SECRET,
): Promise<string> {
  return new EncryptJWT(claims)
    .setProtectedHeader({ alg: 'dir', enc })
    .setIssuedAt()
    .setExpirationTime('30d')
    .encrypt(v5Key(secret, cookieName, enc));
}

test('parseCookieHeader reads name=value pairs, unquotes, percent-decodes and keeps the first of a name', () => {
  const c = parseCookieHeader('a=1; b="two words"; c=x%3Dy; a=ignored; __proto__=p; bad; =novalue; d=%zz');
  assert.equal(c.get('a'), '1');
  assert.equal(c.get('b'), 'two words');
  assert.equal(c.get('c'), 'x=y');
  assert.equal(c.get('__proto__'), 'p');
  assert.equal(c.get('d'), '%zz');
  assert.equal(c.size, 5);
  assert.equal(parseCookieHeader(undefined).size, 0);
  assert.equal(parseCookieHeader('').size, 0);
});

test('a next-auth v4 session cookie round-trips to its user and claims', async () => {
  const token = await v4Token({ sub: 'user-42', name: 'Ada', email: 'ada@example.com' });
  const session = await decodeNextAuthSession(`theme=dark; next-auth.session-token=${token}; other=1`, SECRET);
  assert.ok(session);
  assert.equal(session.user, 'user-42');
  assert.equal(session.claims.name, 'Ada');
  assert.equal(session.claims.email, 'ada@example.com');
  assert.equal(typeof session.claims.exp, 'number');
});

test('the __Secure- prefixed next-auth cookie is read too', async () => {
  const token = await v4Token({ sub: 'u1' });
  const r = await inspectNextAuthSession(`__Secure-next-auth.session-token=${token}`, SECRET);
  assert.ok(r.ok);
  assert.equal(r.cookieName, '__Secure-next-auth.session-token');
  assert.equal(r.format, 'next-auth-v4');
});

test('a chunked session cookie (.0, .1, .2 above 4096 bytes) is joined in index order', async () => {
  const token = await v4Token({ sub: 'big', blob: 'x'.repeat(9000) });
  assert.ok(token.length > 8192);
  const size = 4000;
  const chunks = [token.slice(0, size), token.slice(size, 2 * size), token.slice(2 * size)];
  const header = [
    `next-auth.session-token.2=${chunks[2]}`,
    `next-auth.session-token.0=${chunks[0]}`,
    'unrelated=1',
    `next-auth.session-token.1=${chunks[1]}`,
  ].join('; ');
  const session = await decodeNextAuthSession(header, SECRET);
  assert.equal(session?.user, 'big');
  assert.equal(String(session?.claims.blob).length, 9000);
});

test('an Auth.js v5 session cookie (A256CBC-HS512, salt = cookie name) is decoded', async () => {
  const token = await v5Token({ sub: 'v5-user' }, 'authjs.session-token');
  const r = await inspectNextAuthSession(`authjs.session-token=${token}`, SECRET);
  assert.ok(r.ok);
  assert.equal(r.session.user, 'v5-user');
  assert.equal(r.format, 'authjs-v5');
});

test('an Auth.js v5 cookie encrypted with A256GCM on https is decoded, and a rotated secret list is tried in turn', async () => {
  const name = '__Secure-authjs.session-token';
  const token = await v5Token({ sub: 'rotated' }, name, 'A256GCM', 'old-secret');
  const session = await decodeNextAuthSession(`${name}=${token}`, ['new-secret', 'old-secret']);
  assert.equal(session?.user, 'rotated');
});

test('a session without sub is refused as no_user, never identified by its email or name', async () => {
  const token = await v4Token({ email: 'grace@example.com' });
  assert.equal(await decodeNextAuthSession(`next-auth.session-token=${token}`, SECRET), null);
  const byEmail = await inspectNextAuthSession(`next-auth.session-token=${token}`, SECRET);
  assert.equal(byEmail.ok ? 'ok' : byEmail.reason, 'no_user');
  const anonymous = await v4Token({ name: 'nobody' });
  const r = await inspectNextAuthSession(`next-auth.session-token=${anonymous}`, SECRET);
  assert.equal(r.ok ? 'ok' : r.reason, 'no_user');
});

test('a cookie encrypted with another secret decodes to null and is reported as bad_secret', async () => {
  const token = await v4Token({ sub: 'u' }, 'some-other-secret');
  const header = `next-auth.session-token=${token}`;
  assert.equal(await decodeNextAuthSession(header, SECRET), null);
  const r = await inspectNextAuthSession(header, SECRET);
  assert.equal(r.ok ? 'ok' : r.reason, 'bad_secret');
});

test('an expired session decodes to null and is reported as expired', async () => {
  const token = await v4Token({ sub: 'u' }, SECRET, Math.floor(Date.now() / 1000) - 3600);
  const header = `next-auth.session-token=${token}`;
  assert.equal(await decodeNextAuthSession(header, SECRET), null);
  const r = await inspectNextAuthSession(header, SECRET);
  assert.equal(r.ok ? 'ok' : r.reason, 'expired');
});

test('no cookie, an empty header and garbage all decode to null', async () => {
  assert.equal(await decodeNextAuthSession(undefined, SECRET), null);
  assert.equal(await decodeNextAuthSession('theme=dark', SECRET), null);
  const none = await inspectNextAuthSession('theme=dark', SECRET);
  assert.equal(none.ok ? 'ok' : none.reason, 'no_cookie');
  for (const junk of ['garbage', 'a.b.c.d.e', 'x'.repeat(100_000), '....']) {
    assert.equal(await decodeNextAuthSession(`next-auth.session-token=${junk}`, SECRET), null);
  }
  const r = await inspectNextAuthSession('authjs.session-token=a.b.c.d.e', SECRET);
  assert.equal(r.ok ? 'ok' : r.reason, 'malformed');
});

test('a v4 cookie placed under the Auth.js name does not decode (the key derivations differ)', async () => {
  const token = await v4Token({ sub: 'u' });
  assert.equal(await decodeNextAuthSession(`authjs.session-token=${token}`, SECRET), null);
});

test('session claims are copied into a prototype-less object and __proto__ stays inert', async () => {
  const key = v4Key(SECRET);
  // EncryptJWT would drop an own __proto__ key; build the claims object with JSON.parse so it is there.
  const claims = JSON.parse(
    '{"sub":"u","__proto__":{"polluted":true},"role":{"__proto__":{"admin":true}}}',
  ) as JWTPayload;
  const token = await new EncryptJWT(claims)
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setExpirationTime('1h')
    .encrypt(key);
  const session = await decodeNextAuthSession(`next-auth.session-token=${token}`, SECRET);
  assert.ok(session);
  assert.equal(Object.getPrototypeOf(session.claims), null);
  assert.equal(Object.hasOwn(session.claims, '__proto__'), false);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(({} as Record<string, unknown>).admin, undefined);
});

test('a custom session cookie name is read with either key derivation', async () => {
  const v4 = await v4Token({ sub: 'custom4' });
  assert.equal(
    (await decodeNextAuthSession(`my-session=${v4}`, SECRET, { cookieName: 'my-session' }))?.user,
    'custom4',
  );
  const v5 = await v5Token({ sub: 'custom5' }, 'my-session');
  assert.equal(
    (await decodeNextAuthSession(`my-session=${v5}`, SECRET, { cookieName: 'my-session' }))?.user,
    'custom5',
  );
});

test('decoding without a secret is a programming error and rejects with a TypeError', async () => {
  await assert.rejects(decodeNextAuthSession('next-auth.session-token=x', ''), TypeError);
  await assert.rejects(decodeNextAuthSession('next-auth.session-token=x', []), TypeError);
});
