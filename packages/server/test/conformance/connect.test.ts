import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, generateKeyPair, exportSPKI } from 'jose';
import { engineNames } from '../support/engines.js';
import {
  RawClient,
  encodings,
  mintToken,
  newClient,
  startHerald,
  waitFor,
  SECRET,
  type Encoding,
  type TestServer,
} from '../support/herald.js';

const open = { channel: { withoutNamespace: { allow_subscribe_for_client: true } } };

for (const engineName of engineNames) {
  for (const encoding of encodings) describeEngine(engineName, encoding);
}

function describeEngine(engineName: string, encoding: Encoding): void {
  // Cases that drive the JSON protocol by hand (RawClient) or only HTTP run once, with the JSON suite.
  const rawTest = encoding === 'json' ? test : () => undefined;
  describe(`connect and auth (${engineName} engine, ${encoding})`, { timeout: 60_000 }, () => {
    let s: TestServer;
    before(async () => {
      s = await startHerald({ engineName, config: open });
    });
    after(() => s.close());

    test('a client with a valid token connects and gets a client id', async () => {
      const c = newClient(s.wsUrl, { token: await mintToken({ sub: 'alice' }) }, encoding);
      const connected = new Promise<{ client: string }>((r) => c.once('connected', r));
      c.connect();
      const ctx = await connected;
      assert.match(ctx.client, /^[0-9a-f-]{36}$/);
      c.disconnect();
    });

    rawTest('the connect reply carries ping, pong, version, and ttl for an expiring token', async () => {
      const raw = await RawClient.open(s.wsUrl);
      raw.send({ id: 1, connect: { token: await mintToken({ sub: 'alice' }, { ttlSec: 120 }), name: 'raw' } });
      const r = await raw.reply(1);
      assert.equal(r.connect.ping, 25);
      assert.equal(r.connect.pong, true);
      assert.equal(typeof r.connect.version, 'string');
      assert.equal(r.connect.expires, true);
      assert.ok(r.connect.ttl > 100 && r.connect.ttl <= 120);
      raw.close();
    });

    async function disconnectCodeFor(token: string): Promise<{ code: number; reason: string }> {
      const c = newClient(s.wsUrl, { token }, encoding);
      const disc = new Promise<{ code: number; reason: string }>((r) => c.once('disconnected', r));
      c.connect();
      const ctx = await disc;
      c.disconnect();
      return ctx;
    }

    test('a token signed with another secret is refused with 3500 and a reason naming the signature', async () => {
      const ctx = await disconnectCodeFor(await mintToken({ sub: 'alice' }, { secret: 'another-secret' }));
      assert.equal(ctx.code, 3500);
      assert.match(ctx.reason, /signature/);
    });

    test('an unsigned token (alg none) is refused with 3500', async () => {
      const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
      const payload = Buffer.from(JSON.stringify({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 })).toString(
        'base64url',
      );
      const ctx = await disconnectCodeFor(`${header}.${payload}.`);
      assert.equal(ctx.code, 3500);
    });

    test('a token without exp is refused with 3500 and a reason naming exp', async () => {
      const ctx = await disconnectCodeFor(await mintToken({ sub: 'alice' }, { ttlSec: null }));
      assert.equal(ctx.code, 3500);
      assert.match(ctx.reason, /exp/);
    });

    test('an expired token gets error 109 so the SDK fetches a new one and connects', async () => {
      const raw = await RawClient.open(s.wsUrl);
      raw.send({ id: 1, connect: { token: await mintToken({ sub: 'alice' }, { ttlSec: -60 }) } });
      const r = await raw.reply(1);
      assert.equal(r.error.code, 109);
      raw.close();

      let calls = 0;
      const c = newClient(
        s.wsUrl,
        {
          token: await mintToken({ sub: 'alice' }, { ttlSec: -60 }),
          getToken: async () => {
            calls++;
            return mintToken({ sub: 'alice' });
          },
        },
        encoding,
      );
      const connected = new Promise((r) => c.once('connected', r));
      c.connect();
      await connected;
      assert.equal(calls, 1);
      c.disconnect();
    });

    rawTest('a connection without a token is refused with 101 unless anonymous access is on', async () => {
      const raw = await RawClient.open(s.wsUrl);
      raw.send({ id: 1, connect: {} });
      const r = await raw.reply(1);
      assert.equal(r.error.code, 101);
      raw.close();
      const anon = await startHerald({ engineName, env: { HERALD_ALLOW_ANONYMOUS: 'true' } });
      try {
        const raw2 = await RawClient.open(anon.wsUrl);
        raw2.send({ id: 1, connect: {} });
        assert.ok((await raw2.reply(1)).connect.client);
        raw2.close();
      } finally {
        await anon.close();
      }
    });

    test('the token refresh flow keeps a connection with a short-lived token alive', async () => {
      // The SDK refreshes exactly at ttl; the grace after exp absorbs a slow machine.
      const short = await startHerald({ engineName, env: { HERALD_EXPIRED_CLOSE_DELAY: '3s' } });
      try {
        let refreshes = 0;
        const c = newClient(
          short.wsUrl,
          {
            getToken: async () => {
              refreshes++;
              return mintToken({ sub: 'alice' }, { ttlSec: 2 });
            },
          },
          encoding,
        );
        let disconnected = false;
        c.on('disconnected', () => {
          disconnected = true;
        });
        const connected = new Promise((r) => c.once('connected', r));
        c.connect();
        await connected;
        await waitFor(() => refreshes >= 3, 'two refreshes', 8000);
        assert.equal(disconnected, false);
        assert.equal(c.state, 'connected');
        c.disconnect();
      } finally {
        await short.close();
      }
    });

    rawTest('a connection whose token lapses without refresh is closed with 3005', async () => {
      const short = await startHerald({ engineName, env: { HERALD_EXPIRED_CLOSE_DELAY: '0' } });
      try {
        const raw = await RawClient.open(short.wsUrl);
        // exp is whole seconds: 3 s leaves room for a loaded machine to answer connect before the token lapses.
        raw.send({ id: 1, connect: { token: await mintToken({ sub: 'alice' }, { ttlSec: 3 }) } });
        assert.ok((await raw.reply(1)).connect, 'connected before the token lapsed');
        const closed = await raw.closed(10_000);
        assert.equal(closed.code, 3005);
      } finally {
        await short.close();
      }
    });

    rawTest('a refresh command with a new token extends the connection and answers expires and ttl', async () => {
      const raw = await RawClient.open(s.wsUrl);
      raw.send({ id: 1, connect: { token: await mintToken({ sub: 'alice' }, { ttlSec: 30 }) } });
      await raw.reply(1);
      raw.send({ id: 2, refresh: { token: await mintToken({ sub: 'alice' }, { ttlSec: 600 }) } });
      const r = await raw.reply(2);
      assert.equal(r.refresh.expires, true);
      assert.ok(r.refresh.ttl > 500);
      raw.send({ id: 3, refresh: { token: await mintToken({ sub: 'mallory' }, { ttlSec: 600 }) } });
      assert.equal((await raw.closed()).code, 3500);
    });

    rawTest('RS256 tokens verify against a configured PEM public key', async () => {
      const { publicKey, privateKey } = await generateKeyPair('RS256');
      const rsa = await startHerald({
        engineName,
        env: { HERALD_TOKEN_SECRET: '', HERALD_TOKEN_PUBLIC_KEY: await exportSPKI(publicKey) },
      });
      try {
        const token = await new SignJWT({ sub: 'alice' })
          .setProtectedHeader({ alg: 'RS256' })
          .setExpirationTime('1h')
          .sign(privateKey);
        const raw = await RawClient.open(rsa.wsUrl);
        raw.send({ id: 1, connect: { token } });
        assert.ok((await raw.reply(1)).connect.client);
        raw.close();
        // HS256 signed with the public key text must not pass (algorithm confusion).
        const forged = await new SignJWT({ sub: 'alice' })
          .setProtectedHeader({ alg: 'HS256' })
          .setExpirationTime('1h')
          .sign(new TextEncoder().encode(await exportSPKI(publicKey)));
        const raw2 = await RawClient.open(rsa.wsUrl);
        raw2.send({ id: 1, connect: { token: forged } });
        assert.equal((await raw2.closed()).code, 3500);
      } finally {
        await rsa.close();
      }
    });

    rawTest('NEXTAUTH_SECRET is used when HERALD_TOKEN_SECRET is unset', async () => {
      const na = await startHerald({
        engineName,
        env: { HERALD_TOKEN_SECRET: '', NEXTAUTH_SECRET: 'nextauth-secret' },
      });
      try {
        const raw = await RawClient.open(na.wsUrl);
        raw.send({ id: 1, connect: { token: await mintToken({ sub: 'bob' }, { secret: 'nextauth-secret' }) } });
        assert.ok((await raw.reply(1)).connect.client);
        raw.close();
      } finally {
        await na.close();
      }
    });

    rawTest('connect and subscribes sent in one frame are answered in order', async () => {
      const raw = await RawClient.open(s.wsUrl);
      raw.send(
        { id: 1, connect: { token: await mintToken({ sub: 'alice' }) } },
        { id: 2, subscribe: { channel: 'a' } },
        { id: 3, subscribe: { channel: 'b' } },
        { id: 4, subscribe: { channel: 'a' } },
      );
      await raw.reply(4);
      const ids = raw.messages.filter((m) => m.id).map((m) => m.id);
      assert.deepEqual(ids, [1, 2, 3, 4]);
      assert.ok(raw.messages[0].connect.client);
      assert.deepEqual(raw.messages[1].subscribe, {});
      assert.equal(raw.messages[3].error.code, 105);
      raw.close();
    });

    rawTest('a browser Origin from another site is refused with 403 before the upgrade', async () => {
      await assert.rejects(RawClient.open(s.wsUrl, { origin: 'http://evil.example' }), /403/);
      const same = await RawClient.open(s.wsUrl, { origin: `http://127.0.0.1:${s.port}` });
      same.close();
      // The refusal body says what was compared and which variable to set.
      const { request } = await import('node:http');
      const body = await new Promise<{ status: number; text: string; marker: string | undefined }>(
        (resolve, reject) => {
          const req = request({
            host: '127.0.0.1',
            port: s.port,
            path: '/ws',
            headers: {
              origin: 'http://evil.example',
              upgrade: 'websocket',
              connection: 'Upgrade',
              'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
              'sec-websocket-version': '13',
            },
          });
          req.on('response', (res) => {
            let text = '';
            res.on('data', (d) => (text += d));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                text,
                marker: res.headers['x-herald-error'] as string | undefined,
              }),
            );
          });
          req.on('error', reject);
          req.end();
        },
      );
      assert.equal(body.status, 403);
      assert.equal(body.marker, 'origin_not_allowed');
      assert.match(body.text, /HERALD_ALLOWED_ORIGINS=http:\/\/evil\.example/);
      assert.match(body.text, new RegExp(`Host: 127\\.0\\.0\\.1:${s.port}`));
    });

    rawTest('an allowlist admits exactly its origins', async () => {
      const allow = await startHerald({ engineName, env: { HERALD_ALLOWED_ORIGINS: 'http://localhost:3000' } });
      try {
        const ok = await RawClient.open(allow.wsUrl, { origin: 'http://localhost:3000' });
        ok.close();
        await assert.rejects(RawClient.open(allow.wsUrl, { origin: 'http://localhost:3001' }), /403/);
        await assert.rejects(RawClient.open(allow.wsUrl, { origin: `http://127.0.0.1:${allow.port}` }), /403/);
        const noOrigin = await RawClient.open(allow.wsUrl);
        noOrigin.close();
      } finally {
        await allow.close();
      }
    });

    rawTest('a Next.js rewrite (Host changed, X-Forwarded-Host kept) passes the default Origin check', async () => {
      const c = await RawClient.open(s.wsUrl, {
        origin: 'http://localhost:3000',
        headers: { 'x-forwarded-host': 'localhost:3000' },
      });
      c.close();
    });

    rawTest('the onConnecting hook can authenticate from request headers', async () => {
      const hooked = await startHerald({
        engineName,
        hooks: {
          onConnecting: ({ transport }) => {
            const cookie = String(transport.headers.cookie ?? '');
            const m = /session=(\w+)/.exec(cookie);
            return m ? { user: m[1]!, data: { hello: m[1] } } : undefined;
          },
        },
      });
      try {
        // A cookie-carrying upgrade must come from a page on an allowed origin (same host here).
        const raw = await RawClient.open(hooked.wsUrl, {
          headers: { cookie: 'session=carol', origin: hooked.httpUrl },
        });
        raw.send({ id: 1, connect: {} });
        const r = await raw.reply(1);
        assert.deepEqual(r.connect.data, { hello: 'carol' });
        raw.close();
      } finally {
        await hooked.close();
      }
    });

    rawTest(`tokens are verified with the configured secret only (${SECRET.length} chars)`, async () => {
      const raw = await RawClient.open(s.wsUrl);
      raw.send({ id: 1, connect: { token: 'not-a-jwt' } });
      const closed = await raw.closed();
      assert.equal(closed.code, 3500);
      assert.match(closed.reason, /malformed/);
    });
  });
}
