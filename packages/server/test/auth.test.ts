import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import {
  createTokenAuth,
  loadPublicKey,
  MAX_DISCONNECT_REASON_BYTES,
  TokenError,
  tokenErrorCode,
  type TokenAuthOptions,
  type TokenErrorReason,
} from '../src/auth/index.js';

const SECRET = 'herald-test-secret-0123456789abcdef';
const enc = (s: string) => new TextEncoder().encode(s);
const nowSec = () => Math.floor(Date.now() / 1000);
const b64url = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

function auth(extra: Partial<TokenAuthOptions> = {}) {
  return createTokenAuth({ hmacSecret: SECRET, requireExp: true, ...extra });
}

async function hs(claims: JWTPayload, alg = 'HS256', secret = SECRET, header: Record<string, unknown> = {}) {
  return new SignJWT(claims).setProtectedHeader({ ...header, alg }).sign(enc(secret));
}

async function refused(promise: Promise<unknown>, reason: TokenErrorReason): Promise<TokenError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof TokenError, `expected a TokenError (${reason}), got ${String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  assert.ok(Buffer.byteLength(caught.disconnectReason) <= MAX_DISCONNECT_REASON_BYTES);
  return caught;
}

// ---- algorithms ----

for (const alg of ['HS256', 'HS384', 'HS512']) {
  test(`a connection token signed with ${alg} and the shared secret is accepted`, async () => {
    const exp = nowSec() + 60;
    const creds = await auth().verifyConnectionToken(await hs({ sub: 'alice', exp }, alg));
    assert.deepEqual(creds, { user: 'alice', expireAt: exp });
  });
}

test('a token signed with another secret is refused as bad_signature and names the secret mismatch', async () => {
  const err = await refused(
    auth().verifyConnectionToken(await hs({ sub: 'alice', exp: nowSec() + 60 }, 'HS256', 'some-other-secret')),
    'bad_signature',
  );
  assert.match(err.message, /signed with a different secret/);
  assert.equal(
    err.disconnectReason,
    "invalid token: bad signature (signed with a different secret than this server's)",
  );
  assert.equal(err.code, 3500);
  assert.equal(err.temporary, false);
});

test('RS256 and PS256 tokens verify against the configured RSA public key', async () => {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const a = auth({ hmacSecret: undefined, publicKeyPem: await exportSPKI(publicKey) });
  const exp = nowSec() + 60;
  const rs = await new SignJWT({ sub: 'bob', exp }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
  assert.deepEqual(await a.verifyConnectionToken(rs), { user: 'bob', expireAt: exp });
  // A WebCrypto key is bound to one algorithm; a node KeyObject signs with either RS* or PS*.
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const b = auth({
    hmacSecret: undefined,
    publicKeyPem: pair.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  });
  for (const alg of ['RS512', 'PS256', 'PS512']) {
    const token = await new SignJWT({ sub: 'bob', exp }).setProtectedHeader({ alg }).sign(pair.privateKey);
    assert.equal((await b.verifyConnectionToken(token)).user, 'bob', alg);
  }
});

test('an RS256 token signed by another key pair is refused as bad_signature naming a different key', async () => {
  const mine = await generateKeyPair('RS256');
  const theirs = await generateKeyPair('RS256');
  const a = auth({ hmacSecret: undefined, publicKeyPem: await exportSPKI(mine.publicKey) });
  const token = await new SignJWT({ sub: 'bob', exp: nowSec() + 60 })
    .setProtectedHeader({ alg: 'RS256' })
    .sign(theirs.privateKey);
  const err = await refused(a.verifyConnectionToken(token), 'bad_signature');
  assert.match(err.message, /different key/);
  assert.match(err.disconnectReason, /different key/);
});

test('an ES256 token verifies against a P-256 public key, and an ES384 token is refused for it', async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const a = auth({ hmacSecret: undefined, publicKeyPem: await exportSPKI(publicKey) });
  const token = await new SignJWT({ sub: 'carol', exp: nowSec() + 60 })
    .setProtectedHeader({ alg: 'ES256' })
    .sign(privateKey);
  assert.equal((await a.verifyConnectionToken(token)).user, 'carol');
  const other = await generateKeyPair('ES384');
  const es384 = await new SignJWT({ sub: 'carol', exp: nowSec() + 60 })
    .setProtectedHeader({ alg: 'ES384' })
    .sign(other.privateKey);
  await refused(a.verifyConnectionToken(es384), 'alg_not_allowed');
});

test('an EdDSA token verifies against an Ed25519 public key', async () => {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const a = auth({ hmacSecret: undefined, publicKeyPem: await exportSPKI(publicKey) });
  const token = await new SignJWT({ sub: 'dave', exp: nowSec() + 60 })
    .setProtectedHeader({ alg: 'EdDSA' })
    .sign(privateKey);
  assert.equal((await a.verifyConnectionToken(token)).user, 'dave');
});

test('an unsigned token (alg none) is refused as alg_not_allowed', async () => {
  const token = `${b64url('{"alg":"none","typ":"JWT"}')}.${b64url(JSON.stringify({ sub: 'mallory', exp: nowSec() + 60 }))}.`;
  await refused(auth().verifyConnectionToken(token), 'alg_not_allowed');
  const upper = `${b64url('{"alg":"NONE"}')}.${b64url(JSON.stringify({ sub: 'mallory', exp: nowSec() + 60 }))}.`;
  await refused(auth().verifyConnectionToken(upper), 'alg_not_allowed');
});

test('an HS256 token with its signature cut off is refused as alg_not_allowed', async () => {
  const token = await hs({ sub: 'mallory', exp: nowSec() + 60 });
  const stripped = token.slice(0, token.lastIndexOf('.') + 1);
  await refused(auth().verifyConnectionToken(stripped), 'alg_not_allowed');
});

test('an HS256 token signed with the RSA public key text is refused when only the public key is configured', async () => {
  const { publicKey } = await generateKeyPair('RS256');
  const pem = await exportSPKI(publicKey);
  const forged = await hs({ sub: 'admin', exp: nowSec() + 60 }, 'HS256', pem);
  const pkOnly = auth({ hmacSecret: undefined, publicKeyPem: pem });
  await refused(pkOnly.verifyConnectionToken(forged), 'alg_not_allowed');
  // With a secret configured as well, HS256 is checked against that secret only, never against the PEM.
  const both = auth({ publicKeyPem: pem });
  await refused(both.verifyConnectionToken(forged), 'bad_signature');
});

test('an RS256 token is refused as alg_not_allowed when only a shared secret is configured', async () => {
  const { privateKey } = await generateKeyPair('RS256');
  const token = await new SignJWT({ sub: 'bob', exp: nowSec() + 60 })
    .setProtectedHeader({ alg: 'RS256' })
    .sign(privateKey);
  const err = await refused(auth().verifyConnectionToken(token), 'alg_not_allowed');
  assert.match(err.message, /shared secret/);
});

test('a token whose signature text is altered in the unused bits of its last character is refused as malformed', async () => {
  const a = auth();
  const good = await hs({ sub: 'alice', exp: nowSec() + 60 });
  assert.equal((await a.verifyConnectionToken(good)).user, 'alice');
  // HS256's 32 bytes take 43 characters: the last one carries 2 unused bits, so 4 texts decode to the same bytes.
  const last = good.at(-1)!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const base = alphabet.indexOf(last) & ~3;
  const twins = [0, 1, 2, 3].map((i) => alphabet[base + i]!).filter((c) => c !== last);
  assert.equal(twins.length, 3);
  for (const c of twins) {
    const altered = good.slice(0, -1) + c;
    assert.deepEqual(Buffer.from(altered.split('.')[2]!, 'base64url'), Buffer.from(good.split('.')[2]!, 'base64url'));
    const err = await refused(a.verifyConnectionToken(altered), 'malformed');
    assert.match(err.message, /signature part is not canonical base64url/);
  }
});

test('a token with an algorithm Herald does not know is refused as alg_not_allowed', async () => {
  const token = `${b64url('{"alg":"HS1"}')}.${b64url('{"sub":"x"}')}.c2ln`;
  await refused(auth().verifyConnectionToken(token), 'alg_not_allowed');
});

test('every token is refused as no_key_configured when no secret, key or JWKS is set', async () => {
  const a = createTokenAuth({ requireExp: true });
  await refused(a.verifyConnectionToken(await hs({ sub: 'alice', exp: nowSec() + 60 })), 'no_key_configured');
  await refused(a.verifySubscriptionToken('x.y.z', { client: 'c', user: '', channel: 'ch' }), 'no_key_configured');
});

// ---- registered claims ----

test('an expired token is refused as expired with protocol code 109', async () => {
  const err = await refused(auth().verifyConnectionToken(await hs({ sub: 'alice', exp: nowSec() - 60 })), 'expired');
  assert.equal(err.code, 109);
  assert.equal(tokenErrorCode.expired, 109);
  assert.match(err.message, /fresh/);
});

test('a token that expired within the clock tolerance is still accepted, and refused with zero tolerance', async () => {
  const token = await hs({ sub: 'alice', exp: nowSec() - 2 });
  assert.equal((await auth().verifyConnectionToken(token)).user, 'alice');
  await refused(auth({ clockToleranceSec: 0 }).verifyConnectionToken(token), 'expired');
});

test('a token whose nbf is in the future is refused as not_yet_valid', async () => {
  const token = await hs({ sub: 'alice', exp: nowSec() + 600, nbf: nowSec() + 300 });
  const err = await refused(auth().verifyConnectionToken(token), 'not_yet_valid');
  assert.match(err.message, /clock/);
});

test('a token without exp is refused as missing_exp when exp is required, and never expires when it is not', async () => {
  const token = await hs({ sub: 'alice' });
  const err = await refused(auth().verifyConnectionToken(token), 'missing_exp');
  assert.match(err.message, /HERALD_TOKEN_REQUIRE_EXP/);
  assert.deepEqual(await auth({ requireExp: false }).verifyConnectionToken(token), { user: 'alice' });
});

test('a non-numeric exp is refused as malformed', async () => {
  const token = await hs({ sub: 'alice', exp: 'tomorrow' as unknown as number });
  await refused(auth().verifyConnectionToken(token), 'malformed');
});

test('the audience is checked when configured: right aud passes, wrong or missing aud is bad_audience', async () => {
  const a = auth({ audience: 'herald' });
  const exp = nowSec() + 60;
  assert.equal((await a.verifyConnectionToken(await hs({ sub: 'a', exp, aud: 'herald' }))).user, 'a');
  assert.equal((await a.verifyConnectionToken(await hs({ sub: 'a', exp, aud: ['x', 'herald'] }))).user, 'a');
  const wrong = await refused(a.verifyConnectionToken(await hs({ sub: 'a', exp, aud: 'billing' })), 'bad_audience');
  assert.match(wrong.message, /HERALD_TOKEN_AUDIENCE/);
  await refused(a.verifyConnectionToken(await hs({ sub: 'a', exp })), 'bad_audience');
});

test('the issuer is checked when configured: right iss passes, wrong or missing iss is bad_issuer', async () => {
  const a = auth({ issuer: 'https://app.example' });
  const exp = nowSec() + 60;
  assert.equal((await a.verifyConnectionToken(await hs({ sub: 'a', exp, iss: 'https://app.example' }))).user, 'a');
  await refused(a.verifyConnectionToken(await hs({ sub: 'a', exp, iss: 'https://evil.example' })), 'bad_issuer');
  await refused(a.verifyConnectionToken(await hs({ sub: 'a', exp })), 'bad_issuer');
});

// ---- junk ----

test('100 KB of garbage is refused as malformed, fast', async (t) => {
  const junk = 'A'.repeat(50_000) + '.' + '%$#'.repeat(16_000);
  const started = performance.now();
  await refused(auth().verifyConnectionToken(junk), 'malformed');
  const dotted = Array.from({ length: 20_000 }, (_, i) => `x${i}`).join('.');
  await refused(auth().verifyConnectionToken(dotted), 'malformed');
  const bigParts = `${'e'.repeat(30_000)}.${'e'.repeat(30_000)}.x`;
  await refused(auth().verifyConnectionToken(bigParts), 'malformed');
  const elapsed = performance.now() - started;
  // Reported, not asserted: the structural check runs before any crypto or JSON parse of the payload.
  t.diagnostic(`garbage refused in ${elapsed.toFixed(2)} ms`);
});

test('tokens that are not JWTs are refused as malformed with a hint', async () => {
  const a = auth();
  await refused(a.verifyConnectionToken(''), 'malformed');
  await refused(a.verifyConnectionToken('not a token'), 'malformed');
  await refused(a.verifyConnectionToken(42 as unknown as string), 'malformed');
  await refused(a.verifyConnectionToken(`${b64url('not json')}.${b64url('{}')}.c2ln`), 'malformed');
  await refused(a.verifyConnectionToken(`${b64url('[1,2]')}.${b64url('{}')}.c2ln`), 'malformed');
  const good = await hs({ sub: 'alice', exp: nowSec() + 60 });
  const bearer = await refused(a.verifyConnectionToken(`Bearer ${good}`), 'malformed');
  assert.match(bearer.message, /Bearer/);
  const jwe = await refused(a.verifyConnectionToken('eyJhbGciOiJkaXIifQ..aXY.Y2lwaGVy.dGFn'), 'malformed');
  assert.match(jwe.message, /JWE/);
  const notJsonPayload = `${good.split('.')[0]}.${b64url('garbage')}.${good.split('.')[2]}`;
  await refused(a.verifyConnectionToken(notJsonPayload), 'bad_signature');
});

test('arbitrary strings and mutated tokens never throw anything but TokenError', async () => {
  const a = auth();
  const good = await hs({ sub: 'alice', exp: nowSec() + 60, info: { name: 'A' } });
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.string(),
        fc.string({ unit: 'binary' }),
        fc.array(fc.base64String(), { minLength: 1, maxLength: 6 }).map((parts) => parts.join('.')),
        fc
          .tuple(fc.nat(good.length - 1), fc.string({ minLength: 1, maxLength: 3 }))
          .map(([i, s]) => good.slice(0, i) + s + good.slice(i + 1)),
        fc.json().map((j) => `${b64url(j)}.${b64url(j)}.${b64url(j)}`),
        fc.json().map((j) => `${b64url('{"alg":"HS256"}')}.${b64url(j)}.c2ln`),
      ),
      async (input) => {
        try {
          await a.verifyConnectionToken(input);
        } catch (err) {
          assert.ok(err instanceof TokenError, `threw ${String(err)}`);
          assert.ok(Buffer.byteLength(err.disconnectReason) <= MAX_DISCONNECT_REASON_BYTES);
          return;
        }
        assert.equal(input, good);
      },
    ),
    { numRuns: 300 },
  );
});

// ---- credentials ----

test('info is carried as JSON text and b64info is decoded, winning over info', async () => {
  const exp = nowSec() + 60;
  const a = auth();
  const withInfo = await a.verifyConnectionToken(await hs({ sub: 'u', exp, info: { name: 'Ann', tags: [1, 2] } }));
  assert.equal(withInfo.info, '{"name":"Ann","tags":[1,2]}');
  const b64 = Buffer.from('{"from":"b64"}').toString('base64');
  const withB64 = await a.verifyConnectionToken(await hs({ sub: 'u', exp, info: { x: 1 }, b64info: b64 }));
  assert.equal(withB64.info, '{"from":"b64"}');
  const notJson = Buffer.from('<html>').toString('base64');
  await refused(a.verifyConnectionToken(await hs({ sub: 'u', exp, b64info: notJson })), 'malformed');
});

test('a __proto__ key in info stays inert JSON text and pollutes nothing', async () => {
  const payload = `{"sub":"u","exp":${nowSec() + 60},"info":{"__proto__":{"polluted":true}},"__proto__":{"user":"admin","polluted":true}}`;
  const header = b64url('{"alg":"HS256"}');
  const body = b64url(payload);
  const { createHmac } = await import('node:crypto');
  const sig = createHmac('sha256', SECRET).update(`${header}.${body}`).digest('base64url');
  const creds = await auth().verifyConnectionToken(`${header}.${body}.${sig}`);
  assert.equal(creds.user, 'u');
  assert.equal(creds.info, '{"__proto__":{"polluted":true}}');
  assert.equal(Object.getPrototypeOf(creds), Object.prototype);
  assert.deepEqual(Object.keys(creds).sort(), ['expireAt', 'info', 'user']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal((creds as unknown as Record<string, unknown>).polluted, undefined);
});

test('only known claims are copied: channels, subs and meta come through, unknown claims do not', async () => {
  const exp = nowSec() + 60;
  const token = await hs({
    sub: 'u',
    exp,
    channels: ['news', 'user:u'],
    subs: { 'chat:1': { info: { role: 'mod' }, data: { hello: 1 } }, 'chat:2': {}, ['__proto__']: { info: 1 } },
    meta: { plan: 'pro' },
    admin: true,
  });
  const creds = await auth().verifyConnectionToken(token);
  assert.deepEqual(creds.channels, ['news', 'user:u']);
  assert.equal(creds.subs?.['chat:1']?.info, '{"role":"mod"}');
  assert.equal(creds.subs?.['chat:1']?.data, '{"hello":1}');
  assert.deepEqual(creds.subs?.['chat:2'], {});
  assert.equal(Object.getPrototypeOf(creds.subs), null);
  assert.deepEqual(Object.keys(creds.subs ?? {}), ['chat:1', 'chat:2']);
  assert.deepEqual(creds.meta, { plan: 'pro' });
  assert.equal('admin' in creds, false);
  await refused(auth().verifyConnectionToken(await hs({ sub: 'u', exp, channels: 'news' })), 'malformed');
  await refused(auth().verifyConnectionToken(await hs({ sub: 'u', exp, sub2: 1, channels: [1] })), 'malformed');
  await refused(auth().verifyConnectionToken(await hs({ sub: 42 as unknown as string, exp })), 'malformed');
});

test('a token without sub connects as the anonymous user ""', async () => {
  assert.equal((await auth().verifyConnectionToken(await hs({ exp: nowSec() + 60 }))).user, '');
});

test('expire_at overrides exp for the connection expiry, and expire_at 0 means never', async () => {
  const exp = nowSec() + 60;
  const a = auth();
  assert.equal(
    (await a.verifyConnectionToken(await hs({ sub: 'u', exp, expire_at: exp + 3600 }))).expireAt,
    exp + 3600,
  );
  assert.equal((await a.verifyConnectionToken(await hs({ sub: 'u', exp, expire_at: 0 }))).expireAt, undefined);
  await refused(a.verifyConnectionToken(await hs({ sub: 'u', exp, expire_at: nowSec() - 60 })), 'expired');
  await refused(a.verifyConnectionToken(await hs({ sub: 'u', exp, expire_at: 'soon' })), 'malformed');
});

test('a subscription token used to connect is refused as wrong_token_type', async () => {
  const token = await hs({ sub: 'u', exp: nowSec() + 60, channel: 'secret' });
  await refused(auth().verifyConnectionToken(token), 'wrong_token_type');
});

// ---- subscription tokens ----

const expect = { client: 'client-1', user: 'u', channel: '$private:room' };

test('a subscription token for this user and channel is accepted with its info and expiry', async () => {
  const exp = nowSec() + 60;
  const creds = await auth().verifySubscriptionToken(
    await hs({ sub: 'u', channel: '$private:room', exp, info: { seat: 3 } }),
    expect,
  );
  assert.deepEqual(creds, { expireAt: exp, info: '{"seat":3}' });
});

test('a subscription token for another channel is refused as channel_mismatch', async () => {
  const token = await hs({ sub: 'u', channel: '$private:other', exp: nowSec() + 60 });
  const err = await refused(auth().verifySubscriptionToken(token, expect), 'channel_mismatch');
  assert.equal(err.code, 3500);
});

test('a subscription token for another user is refused as user_mismatch', async () => {
  const token = await hs({ sub: 'eve', channel: '$private:room', exp: nowSec() + 60 });
  await refused(auth().verifySubscriptionToken(token, expect), 'user_mismatch');
  const anon = await hs({ channel: '$private:room', exp: nowSec() + 60 });
  await refused(auth().verifySubscriptionToken(anon, expect), 'user_mismatch');
  assert.deepEqual(
    await auth({ requireExp: false }).verifySubscriptionToken(await hs({ channel: 'c' }), {
      client: 'x',
      user: '',
      channel: 'c',
    }),
    {},
  );
});

test('a subscription token naming another client id is refused as client_mismatch', async () => {
  const token = await hs({ sub: 'u', channel: '$private:room', client: 'client-2', exp: nowSec() + 60 });
  await refused(auth().verifySubscriptionToken(token, expect), 'client_mismatch');
  const mine = await hs({ sub: 'u', channel: '$private:room', client: 'client-1', exp: nowSec() + 60 });
  assert.deepEqual(Object.keys(await auth().verifySubscriptionToken(mine, expect)), ['expireAt']);
});

test('a connection token used to subscribe is refused as wrong_token_type', async () => {
  const token = await hs({ sub: 'u', exp: nowSec() + 60 });
  await refused(auth().verifySubscriptionToken(token, expect), 'wrong_token_type');
});

test('subscription tokens follow the same exp, audience and signature rules as connection tokens', async () => {
  const a = auth({ audience: 'herald' });
  const base = { sub: 'u', channel: '$private:room', aud: 'herald' };
  await refused(a.verifySubscriptionToken(await hs({ ...base, exp: nowSec() - 60 }), expect), 'expired');
  await refused(a.verifySubscriptionToken(await hs({ ...base }), expect), 'missing_exp');
  await refused(a.verifySubscriptionToken(await hs({ ...base, exp: nowSec() + 60, aud: 'x' }), expect), 'bad_audience');
  await refused(
    a.verifySubscriptionToken(await hs({ ...base, exp: nowSec() + 60 }, 'HS256', 'nope'), expect),
    'bad_signature',
  );
  const expireAt = nowSec() + 999;
  assert.equal(
    (await a.verifySubscriptionToken(await hs({ ...base, exp: nowSec() + 60, expire_at: expireAt }), expect)).expireAt,
    expireAt,
  );
});

// ---- codes and reasons ----

test('every reason maps to 3500 except expired (109) and an unreachable key set (100, temporary)', () => {
  for (const [reason, code] of Object.entries(tokenErrorCode)) {
    if (reason === 'expired') assert.equal(code, 109);
    else if (reason === 'jwks_unavailable') assert.equal(code, 100);
    else assert.equal(code, 3500, reason);
    const err = new TokenError(reason as TokenErrorReason, 'x');
    assert.ok(Buffer.byteLength(err.disconnectReason) <= MAX_DISCONNECT_REASON_BYTES, reason);
  }
  assert.ok(Buffer.byteLength(new TokenError('malformed', 'x', 'é'.repeat(200)).disconnectReason) <= 123);
});

// ---- options and key loading ----

test('createTokenAuth refuses bad options at startup with a message that says what to fix', async () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  assert.throws(() => auth({ publicKeyPem: privatePem }), /private key/);
  assert.throws(
    () => auth({ publicKeyPem: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----' }),
    /PEM public key/,
  );
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 })
    .publicKey.export({ format: 'pem', type: 'spki' })
    .toString();
  assert.throws(() => auth({ publicKeyPem: weak }), /2048/);
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' })
    .publicKey.export({ format: 'pem', type: 'spki' })
    .toString();
  assert.throws(() => auth({ publicKeyPem: k1 }), /P-256/);
  assert.throws(() => auth({ hmacSecret: '' }), /empty/);
  assert.throws(() => auth({ jwksUrl: 'not a url' }), /HERALD_TOKEN_JWKS_URL/);
  assert.throws(() => auth({ jwksUrl: 'file:///etc/passwd' }), /http/);
  assert.throws(() => auth({ clockToleranceSec: -1 }), /clockToleranceSec/);
  assert.throws(() => auth({ audience: '' }), /HERALD_TOKEN_AUDIENCE/);
});

test('describe() names the configured key kinds without secret material', async () => {
  const { publicKey } = await generateKeyPair('ES256');
  const d = auth({ publicKeyPem: await exportSPKI(publicKey) }).describe();
  assert.deepEqual(d, { secret: true, publicKey: 'EC P-256', algorithms: ['HS256', 'HS384', 'HS512', 'ES256'] });
  assert.equal(JSON.stringify(d).includes(SECRET), false);
});

test('loadPublicKey accepts PEM text, PEM with escaped newlines, and a path to a PEM file', async () => {
  const { publicKey } = await generateKeyPair('RS256');
  const pem = await exportSPKI(publicKey);
  assert.equal(loadPublicKey(pem), pem.trim());
  assert.equal(loadPublicKey(pem.trim().replace(/\n/g, '\\n')), pem.trim());
  const dir = mkdtempSync(join(tmpdir(), 'herald-auth-'));
  try {
    const file = join(dir, 'key.pem');
    writeFileSync(file, pem);
    assert.equal(loadPublicKey(file), pem.trim());
    assert.throws(() => loadPublicKey(join(dir, 'missing.pem')), /neither PEM text.*ENOENT/);
    writeFileSync(join(dir, 'junk.txt'), 'hello');
    assert.throws(() => loadPublicKey(join(dir, 'junk.txt')), /no PEM block/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => loadPublicKey('  '), /empty/);
});

// HS256/384/512 tokens with plain headers are verified on a synchronous node:crypto path; headers with extensions
// go through jose. Both must agree on every outcome.
test('HMAC tokens verified on the fast path and through jose give the same claims and the same refusals', async () => {
  const a = auth({ audience: 'app', issuer: 'me' });
  const good = { sub: 'u1', aud: 'app', iss: 'me', exp: nowSec() + 60 };
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    assert.equal((await a.verifyConnectionToken(await hs(good, alg))).user, 'u1');
  }
  // A crit header that jose does not recognise is refused by jose (the fast path never sees it).
  const signingInput = `${b64url(JSON.stringify({ alg: 'HS256', crit: ['x-unknown'], 'x-unknown': 1 }))}.${b64url(JSON.stringify(good))}`;
  const crit = `${signingInput}.${createHmac('sha256', SECRET).update(signingInput).digest('base64url')}`;
  await refused(a.verifyConnectionToken(crit), 'malformed');
  await refused(a.verifyConnectionToken(await hs({ ...good, aud: ['other', 'x'] })), 'bad_audience');
  assert.equal((await a.verifyConnectionToken(await hs({ ...good, aud: ['other', 'app'] }))).user, 'u1');
  await refused(a.verifyConnectionToken(await hs({ ...good, iss: 'you' })), 'bad_issuer');
  await refused(a.verifyConnectionToken(await hs({ sub: 'u1', aud: 'app', exp: nowSec() + 60 })), 'bad_issuer');
  await refused(a.verifyConnectionToken(await hs({ ...good, exp: nowSec() - 60 })), 'expired');
  await refused(a.verifyConnectionToken(await hs({ ...good, nbf: nowSec() + 60 })), 'not_yet_valid');
  await refused(a.verifyConnectionToken(await hs({ ...good, iat: 'yesterday' } as never)), 'malformed');
  await refused(a.verifyConnectionToken(await hs(good, 'HS256', 'another-secret-0123456789abcdef')), 'bad_signature');
  const [h, p] = (await hs(good)).split('.');
  await refused(a.verifyConnectionToken(`${h}.${p}.${Buffer.alloc(32).toString('base64url')}`), 'bad_signature');
  await refused(a.verifyConnectionToken(`${h}.${b64url('[1,2]')}.${(await hs(good)).split('.')[2]}`), 'bad_signature');
});
