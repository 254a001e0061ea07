import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { createTokenAuth, TokenError, type TokenErrorReason } from '../src/auth/index.js';

interface JwksServer {
  url: string;
  fetches: () => number;
  keys: JWK[];
  /** Answer 500 instead of the key set while true. */
  failing: boolean;
  close: () => Promise<void>;
}

/** A real key server on 127.0.0.1:0 that counts how often the key set is fetched. */
async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  let count = 0;
  const state = { failing: false };
  const server: Server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    count++;
    if (state.failing) {
      res.writeHead(500).end('down');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: out.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const out: JwksServer = {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    fetches: () => count,
    keys,
    get failing() {
      return state.failing;
    },
    set failing(v: boolean) {
      state.failing = v;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return out;
}

async function keyPair(alg: string, kid: string) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  /** `headerKid: null` signs without a kid. */
  const sign = (claims: Record<string, unknown>, headerKid: string | null = kid) =>
    new SignJWT(claims).setProtectedHeader(headerKid === null ? { alg } : { alg, kid: headerKid }).sign(privateKey);
  return { jwk, sign };
}

const nowSec = () => Math.floor(Date.now() / 1000);

async function reasonOf(promise: Promise<unknown>): Promise<TokenErrorReason | 'ok'> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof TokenError, String(err));
    return err.reason;
  }
}

test('a token whose kid is in the JWKS verifies, and the key set is fetched once and cached', async (t) => {
  const rsa = await keyPair('RS256', 'rsa-1');
  const ec = await keyPair('ES256', 'ec-1');
  const srv = await startJwksServer([rsa.jwk, ec.jwk]);
  t.after(() => srv.close());
  const auth = createTokenAuth({ jwksUrl: srv.url, requireExp: true });
  const exp = nowSec() + 60;
  assert.deepEqual(await auth.verifyConnectionToken(await rsa.sign({ sub: 'a', exp })), { user: 'a', expireAt: exp });
  assert.equal((await auth.verifyConnectionToken(await ec.sign({ sub: 'b', exp }))).user, 'b');
  await Promise.all(
    Array.from({ length: 10 }, async () => auth.verifyConnectionToken(await rsa.sign({ sub: 'c', exp }))),
  );
  assert.equal(srv.fetches(), 1);
});

test('unknown kids cause at most one JWKS refetch per cooldown', async (t) => {
  const rsa = await keyPair('RS256', 'rsa-1');
  const srv = await startJwksServer([rsa.jwk]);
  t.after(() => srv.close());
  const cooldownMs = 400;
  const auth = createTokenAuth({ jwksUrl: srv.url, requireExp: true, jwksCooldownMs: cooldownMs });
  const exp = nowSec() + 60;
  assert.equal(await reasonOf(auth.verifyConnectionToken(await rsa.sign({ sub: 'a', exp }))), 'ok');
  assert.equal(srv.fetches(), 1);

  // A flood of made-up kids inside the cooldown: refused, and no fetch at all.
  const forged = await Promise.all(Array.from({ length: 25 }, (_, i) => rsa.sign({ sub: 'x', exp }, `made-up-${i}`)));
  const reasons = await Promise.all(forged.map((tok) => reasonOf(auth.verifyConnectionToken(tok))));
  assert.deepEqual(new Set(reasons), new Set(['unknown_kid']));
  assert.equal(srv.fetches(), 1);

  // After the cooldown: one refetch, shared by concurrent lookups, then quiet again for another cooldown.
  await sleep(cooldownMs + 50);
  const again = await Promise.all(forged.map((tok) => reasonOf(auth.verifyConnectionToken(tok))));
  assert.deepEqual(new Set(again), new Set(['unknown_kid']));
  assert.equal(srv.fetches(), 2);
  for (const tok of forged.slice(0, 5)) assert.equal(await reasonOf(auth.verifyConnectionToken(tok)), 'unknown_kid');
  assert.equal(srv.fetches(), 2);
});

test('a key added to the JWKS is picked up by the first unknown-kid lookup after the cooldown', async (t) => {
  const old = await keyPair('RS256', 'old');
  const rotated = await keyPair('ES256', 'new');
  const srv = await startJwksServer([old.jwk]);
  t.after(() => srv.close());
  // A cooldown long enough that a loaded CI machine cannot pass it between the first fetch and the unknown-kid lookup.
  const auth = createTokenAuth({ jwksUrl: srv.url, requireExp: true, jwksCooldownMs: 1500 });
  const exp = nowSec() + 60;
  assert.equal(await reasonOf(auth.verifyConnectionToken(await old.sign({ sub: 'a', exp }))), 'ok');
  srv.keys.push(rotated.jwk);
  const token = await rotated.sign({ sub: 'a', exp });
  const err = await auth.verifyConnectionToken(token).catch((e: unknown) => e);
  assert.ok(err instanceof TokenError && err.reason === 'unknown_kid');
  assert.match(err.message, /kid "new"/);
  await sleep(1600);
  // Concurrent lookups of the new kid share one refetch and all see the new key.
  const users = await Promise.all(Array.from({ length: 5 }, () => auth.verifyConnectionToken(token)));
  assert.deepEqual(
    users.map((c) => c.user),
    ['a', 'a', 'a', 'a', 'a'],
  );
  assert.equal(srv.fetches(), 2);
});

test('a token signed by another key under a published kid is refused as bad_signature naming a different key', async (t) => {
  const published = await keyPair('ES256', 'k');
  const attacker = await keyPair('ES256', 'k');
  const srv = await startJwksServer([published.jwk]);
  t.after(() => srv.close());
  const auth = createTokenAuth({ jwksUrl: srv.url, requireExp: true });
  const err = await auth
    .verifyConnectionToken(await attacker.sign({ sub: 'a', exp: nowSec() + 60 }))
    .catch((e: unknown) => e);
  assert.ok(err instanceof TokenError);
  assert.equal(err.reason, 'bad_signature');
  assert.match(err.message, /different key/);
});

test('HS256 tokens are refused as alg_not_allowed when only a JWKS is configured, even if it lists a secret key', async (t) => {
  const rsa = await keyPair('RS256', 'rsa-1');
  const oct: JWK = { kty: 'oct', k: Buffer.from('shared').toString('base64url'), kid: 'oct-1', alg: 'HS256' };
  const srv = await startJwksServer([rsa.jwk, oct]);
  t.after(() => srv.close());
  const auth = createTokenAuth({ jwksUrl: srv.url, requireExp: true });
  const token = await new SignJWT({ sub: 'a', exp: nowSec() + 60 })
    .setProtectedHeader({ alg: 'HS256', kid: 'oct-1' })
    .sign(new TextEncoder().encode('shared'));
  assert.equal(await reasonOf(auth.verifyConnectionToken(token)), 'alg_not_allowed');
  assert.equal(srv.fetches(), 0);
});

test('a token without kid is refused as unknown_kid when several JWKS keys fit its alg', async (t) => {
  const a = await keyPair('RS256', 'a');
  const b = await keyPair('RS256', 'b');
  const srv = await startJwksServer([a.jwk, b.jwk]);
  t.after(() => srv.close());
  const auth = createTokenAuth({ jwksUrl: srv.url, requireExp: true });
  const err = await auth
    .verifyConnectionToken(await a.sign({ sub: 'a', exp: nowSec() + 60 }, null))
    .catch((e: unknown) => e);
  assert.ok(err instanceof TokenError && err.reason === 'unknown_kid');
  assert.match(err.message, /kid/);
});

test('an unreachable key server is reported as jwks_unavailable, temporary, with code 100', async (t) => {
  const rsa = await keyPair('RS256', 'rsa-1');
  const srv = await startJwksServer([rsa.jwk]);
  t.after(() => srv.close());
  srv.failing = true;
  const auth = createTokenAuth({ jwksUrl: srv.url, requireExp: true });
  const err = await auth
    .verifyConnectionToken(await rsa.sign({ sub: 'a', exp: nowSec() + 60 }))
    .catch((e: unknown) => e);
  assert.ok(err instanceof TokenError);
  assert.equal(err.reason, 'jwks_unavailable');
  assert.equal(err.code, 100);
  assert.equal(err.temporary, true);
  assert.match(err.message, /HTTP 500/);

  const closed = await startJwksServer([]);
  await closed.close();
  const nowhere = createTokenAuth({ jwksUrl: closed.url, requireExp: true, jwksTimeoutMs: 1000 });
  const err2 = await nowhere
    .verifyConnectionToken(await rsa.sign({ sub: 'a', exp: nowSec() + 60 }))
    .catch((e: unknown) => e);
  assert.ok(err2 instanceof TokenError && err2.reason === 'jwks_unavailable');
});

test('cached keys stay in use when a refetch of a stale key set fails', async (t) => {
  const rsa = await keyPair('RS256', 'rsa-1');
  const srv = await startJwksServer([rsa.jwk]);
  t.after(() => srv.close());
  const auth = createTokenAuth({ jwksUrl: srv.url, requireExp: true, jwksCacheMaxAgeMs: 50, jwksCooldownMs: 50 });
  const exp = nowSec() + 60;
  assert.equal((await auth.verifyConnectionToken(await rsa.sign({ sub: 'a', exp }))).user, 'a');
  srv.failing = true;
  await sleep(80);
  assert.equal((await auth.verifyConnectionToken(await rsa.sign({ sub: 'a', exp }))).user, 'a');
  assert.equal(srv.fetches(), 2);
});

test('a configured public key and a JWKS coexist: kid-less tokens use the key, tokens with a kid use the JWKS', async (t) => {
  const { exportSPKI } = await import('jose');
  const pem = await generateKeyPair('ES256', { extractable: true });
  const jw = await keyPair('RS256', 'j1');
  const srv = await startJwksServer([jw.jwk]);
  t.after(() => srv.close());
  const auth = createTokenAuth({ publicKeyPem: await exportSPKI(pem.publicKey), jwksUrl: srv.url, requireExp: true });
  const exp = nowSec() + 60;
  const viaPem = await new SignJWT({ sub: 'p', exp }).setProtectedHeader({ alg: 'ES256' }).sign(pem.privateKey);
  assert.equal((await auth.verifyConnectionToken(viaPem)).user, 'p');
  assert.equal(srv.fetches(), 0);
  assert.equal((await auth.verifyConnectionToken(await jw.sign({ sub: 'j', exp }))).user, 'j');
  assert.equal(srv.fetches(), 1);
});
