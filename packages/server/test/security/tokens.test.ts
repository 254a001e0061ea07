import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHmac } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { mintToken, RawClient, SECRET, startHerald, waitFor, type TestServer } from '../support/herald.js';
import { assertNoStack, securityChannels, signRawHs256 } from './common.js';

/**
 * docs/security.md, "Auth and authorization": hostile tokens over the wire. Each refusal is checked for its code,
 * a reason without stack trace, and speed (a generous bound: the refusal must not wait on anything).
 */
const now = () => Math.floor(Date.now() / 1000);
const b64 = (s: string) => Buffer.from(s).toString('base64url');

async function tryConnect(
  s: TestServer,
  token: string,
): Promise<{ kind: 'connected' | 'error' | 'closed'; code: number; text: string; ms: number }> {
  const c = await RawClient.open(s.wsUrl);
  const started = performance.now();
  c.send({ id: 1, connect: { token } });
  await waitFor(() => c.messages.some((m) => m.id === 1) || c.closeCode !== undefined, 'a connect answer', 5000);
  const ms = performance.now() - started;
  const reply = c.messages.find((m) => m.id === 1);
  c.close();
  if (reply?.connect) return { kind: 'connected', code: 0, text: JSON.stringify(reply), ms };
  if (reply?.error) return { kind: 'error', code: reply.error.code, text: JSON.stringify(reply), ms };
  const closed = await c.closed();
  return { kind: 'closed', code: closed.code, text: closed.reason, ms };
}

function assertRefused(
  r: Awaited<ReturnType<typeof tryConnect>>,
  kind: 'error' | 'closed',
  code: number,
  reason?: RegExp,
): void {
  assert.equal(r.kind, kind, r.text);
  assert.equal(r.code, code, r.text);
  if (reason) assert.match(r.text, reason);
  assertNoStack(r.text, 'the refusal');
  assert.ok(r.ms < 2000, `refused in ${r.ms.toFixed(1)} ms`);
}

describe('hostile connection tokens (secret and RSA public key configured)', { timeout: 60_000 }, () => {
  let s: TestServer;
  let onlyKey: TestServer;
  let rsaPem: string;
  before(async () => {
    const { publicKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
    rsaPem = await exportSPKI(publicKey);
    s = await startHerald({
      config: securityChannels,
      env: {
        HERALD_TOKEN_PUBLIC_KEY: rsaPem,
        HERALD_TOKEN_AUDIENCE: 'herald-tests',
        HERALD_TOKEN_ISSUER: 'https://issuer.test',
        HERALD_MAX_MESSAGE_SIZE: String(256 * 1024),
      },
    });
    onlyKey = await startHerald({
      config: securityChannels,
      env: { HERALD_TOKEN_SECRET: '', HERALD_TOKEN_PUBLIC_KEY: rsaPem },
    });
  });
  after(async () => {
    await s.close();
    await onlyKey.close();
  });

  const good = (extra: Record<string, unknown> = {}) =>
    mintToken(
      { sub: 'alice', aud: 'herald-tests', iss: 'https://issuer.test', ...extra },
      { ttlSec: 'exp' in extra ? null : 600 },
    );

  test('a well-formed token with the right aud and iss connects (the baseline the refusals are measured against)', async () => {
    assert.equal((await tryConnect(s, await good())).kind, 'connected');
  });

  test('alg "none" (any spelling) with an empty signature is closed with 3500', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const t = `${b64(`{"alg":"${alg}","typ":"JWT"}`)}.${b64(JSON.stringify({ sub: 'admin', exp: now() + 600, aud: 'herald-tests', iss: 'https://issuer.test' }))}.`;
      assertRefused(await tryConnect(s, t), 'closed', 3500, /alg|algorithm|invalid token/i);
    }
  });

  test('an HS256 token with its signature removed is closed with 3500', async () => {
    const [h, p] = (await good()).split('.');
    assertRefused(await tryConnect(s, `${h}.${p}.`), 'closed', 3500);
    assertRefused(await tryConnect(s, `${h}.${p}`), 'closed', 3500);
  });

  test('an HS256 token signed with the RSA public key text is closed with 3500 (secret also configured: bad signature)', async () => {
    const payload = JSON.stringify({ sub: 'admin', exp: now() + 600, aud: 'herald-tests', iss: 'https://issuer.test' });
    assertRefused(await tryConnect(s, signRawHs256(payload, rsaPem)), 'closed', 3500, /signature/i);
  });

  test('an HS256 token signed with the RSA public key text is closed with 3500 when only the public key is configured (algorithm not allowed)', async () => {
    const payload = JSON.stringify({ sub: 'admin', exp: now() + 600 });
    for (const keyText of [rsaPem, rsaPem.trim(), rsaPem.replace(/\n/g, '')]) {
      assertRefused(await tryConnect(onlyKey, signRawHs256(payload, keyText)), 'closed', 3500, /alg/i);
    }
  });

  test('an expired token gets error 109 (the SDK fetches a new one), not a connection', async () => {
    assertRefused(await tryConnect(s, await good({ exp: now() - 60 })), 'error', 109);
  });

  test('the clock-skew edge: exp 2 s ago and nbf 2 s ahead pass within the 5 s tolerance; 30 s either way is refused', async () => {
    assert.equal((await tryConnect(s, await good({ exp: now() - 2 }))).kind, 'connected', 'exp within tolerance');
    assert.equal((await tryConnect(s, await good({ nbf: now() + 2 }))).kind, 'connected', 'nbf within tolerance');
    assertRefused(await tryConnect(s, await good({ exp: now() - 30 })), 'error', 109);
    assertRefused(await tryConnect(s, await good({ nbf: now() + 30 })), 'closed', 3500, /nbf|not yet/i);
  });

  test('a token whose nbf is in the future is closed with 3500', async () => {
    assertRefused(await tryConnect(s, await good({ nbf: now() + 3600 })), 'closed', 3500);
  });

  test('a token without exp is closed with 3500', async () => {
    const t = await new SignJWT({ sub: 'alice', aud: 'herald-tests', iss: 'https://issuer.test' })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));
    assertRefused(await tryConnect(s, t), 'closed', 3500, /exp/);
  });

  test('a wrong or missing aud is closed with 3500', async () => {
    assertRefused(await tryConnect(s, await good({ aud: 'another-app' })), 'closed', 3500, /aud/i);
    assertRefused(
      await tryConnect(s, await mintToken({ sub: 'alice', iss: 'https://issuer.test' })),
      'closed',
      3500,
      /aud/i,
    );
  });

  test('a wrong or missing iss is closed with 3500', async () => {
    assertRefused(await tryConnect(s, await good({ iss: 'https://evil.test' })), 'closed', 3500, /iss/i);
    assertRefused(await tryConnect(s, await mintToken({ sub: 'alice', aud: 'herald-tests' })), 'closed', 3500, /iss/i);
  });

  test('100 KB of garbage as a token is closed with 3500, fast', async () => {
    const garbage = Array.from({ length: 100 * 1024 }, (_, i) => 'A.b-_~!%'[i % 8]).join('');
    assertRefused(await tryConnect(s, garbage), 'closed', 3500, /malformed|invalid token/i);
    const dots = `${'a'.repeat(50_000)}.${'b'.repeat(50_000)}.${'c'.repeat(2_000)}`;
    assertRefused(await tryConnect(s, dots), 'closed', 3500);
  });

  test('a token header that is not JSON, or JSON with hostile fields, is closed with 3500', async () => {
    const p = b64(JSON.stringify({ sub: 'a', exp: now() + 60 }));
    const sig = (h: string) => createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url');
    for (const header of [
      'not json',
      '[]',
      'null',
      '{"alg":["HS256"]}',
      '{"alg":"HS256","crit":["exp"]}',
      '{"alg":"HS256","b64":false,"crit":["b64"]}',
      `{"alg":"HS256","kid":"${'k'.repeat(5000)}"}`,
    ]) {
      const h = b64(header);
      assertRefused(await tryConnect(s, `${h}.${p}.${sig(h)}`), 'closed', 3500);
    }
  });
});

test(
  'with the default message size, a 100 KB token never reaches the verifier: the frame is closed with 1009',
  { timeout: 30_000 },
  async () => {
    const s = await startHerald({ config: securityChannels });
    try {
      const r = await tryConnect(s, 'x'.repeat(100 * 1024));
      assert.equal(r.kind, 'closed');
      assert.equal(r.code, 1009);
    } finally {
      await s.close();
    }
  },
);

describe('JWKS: unknown and hostile kids', { timeout: 60_000 }, () => {
  let jwks: Server;
  let fetches = 0;
  let s: TestServer;
  let sign: (kid: string | undefined) => Promise<string>;
  before(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'good-key', alg: 'ES256', use: 'sig' };
    jwks = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/.well-known/jwks.json`;
    s = await startHerald({ config: securityChannels, env: { HERALD_TOKEN_JWKS_URL: url } });
    sign = (kid) => {
      const header: { alg: string; kid?: string } = { alg: 'ES256' };
      if (kid !== undefined) header.kid = kid;
      return new SignJWT({ sub: 'alice' })
        .setProtectedHeader(header)
        .setExpirationTime(now() + 600)
        .sign(privateKey);
    };
  });
  after(async () => {
    await s.close();
    await new Promise((r) => jwks.close(r));
  });

  test('a token with a published kid connects, fetching the key set once', async () => {
    assert.equal((await tryConnect(s, await sign('good-key'))).kind, 'connected');
    assert.equal(fetches, 1);
  });

  test('40 unknown and hostile kids are all closed with 3500 and cause at most one more key-set fetch within the cooldown', async () => {
    const before = fetches;
    const hostile = [
      'no-such-key',
      '../../../../etc/passwd',
      '__proto__',
      'constructor',
      'toString',
      'hasOwnProperty',
      'good-key\u0000',
      'GOOD-KEY',
      ' good-key',
      'k'.repeat(1500),
      '${jndi:ldap://x}',
      '<script>',
    ];
    const kids = [...hostile, ...Array.from({ length: 40 - hostile.length }, (_, i) => `random-${i}-${Math.random()}`)];
    for (const kid of kids) assertRefused(await tryConnect(s, await sign(kid)), 'closed', 3500, /kid|key/i);
    assert.ok(fetches - before <= 1, `key-set fetches for 40 unknown kids: ${fetches - before}`);
    // Non-string kids are malformed headers: refused without a fetch either.
    const p = b64(JSON.stringify({ sub: 'a', exp: now() + 60 }));
    for (const kid of ['1', '{"x":1}', '["good-key"]', 'null']) {
      const t = `${b64(`{"alg":"ES256","kid":${kid}}`)}.${p}.${b64('sig')}`;
      assertRefused(await tryConnect(s, t), 'closed', 3500);
    }
    assert.ok(fetches - before <= 1, `key-set fetches after non-string kids: ${fetches - before}`);
    // The good key still works, from the cache.
    assert.equal((await tryConnect(s, await sign('good-key'))).kind, 'connected');
    assert.ok(fetches - before <= 1);
  });
});

describe('a token expiring mid-connection', { timeout: 30_000 }, () => {
  test('gets the refresh window (HERALD_EXPIRED_CLOSE_DELAY): a client that refreshes stays, one that does not is closed with 3005', async () => {
    const s = await startHerald({ config: securityChannels, env: { HERALD_EXPIRED_CLOSE_DELAY: '4s' } });
    try {
      const open = async (user: string) => {
        const c = await RawClient.open(s.wsUrl);
        c.send({ id: 1, connect: { token: await mintToken({ sub: user }, { ttlSec: 2 }) } });
        const r = await c.reply(1);
        assert.equal(r.connect.expires, true);
        assert.ok(r.connect.ttl <= 2, `ttl ${r.connect.ttl}`);
        return c;
      };
      const [lazy, diligent] = [await open('lazy'), await open('diligent')];
      // Wait until exp has passed, then refresh only one of them inside the grace window.
      await new Promise((r) => setTimeout(r, 2100));
      assert.equal(lazy.closeCode, undefined, 'not closed at exp: the grace window is still open');
      diligent.send({ id: 2, refresh: { token: await mintToken({ sub: 'diligent' }, { ttlSec: 60 }) } });
      assert.ok((await diligent.reply(2)).refresh, 'refresh accepted inside the window');
      const closed = await lazy.closed(10_000);
      assert.equal(closed.code, 3005);
      assertNoStack(closed.reason, 'the 3005 reason');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(diligent.closeCode, undefined, 'the refreshed connection stays open');
      // A refresh that tries to switch users is refused with 3500.
      diligent.send({ id: 3, refresh: { token: await mintToken({ sub: 'admin' }, { ttlSec: 60 }) } });
      assert.equal((await diligent.closed()).code, 3500);
    } finally {
      await s.close();
    }
  });
});
