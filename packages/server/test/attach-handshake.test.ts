// herald.attach() gives the app's server Herald's slow-handshake bound (issue #12: HERALD_HANDSHAKE_TIMEOUT was
// applied only by listen(), so with attach() a socket could trickle its upgrade headers for Node's 60 s default).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { createHerald } from '../src/index.js';
import { SECRET } from './support/herald.js';

test(
  "attach() lowers the app server's headersTimeout to HERALD_HANDSHAKE_TIMEOUT, and a trickling upgrade is answered 408",
  { timeout: 20_000 },
  async () => {
    const server = createServer({ connectionsCheckingInterval: 200 }, (_req, res) => res.end('app'));
    assert.equal(server.headersTimeout, 60_000, "Node's default before attach");
    const herald = createHerald({
      logger: false,
      env: { HERALD_TOKEN_SECRET: SECRET, HERALD_HANDSHAKE_TIMEOUT: '1s' },
    });
    herald.attach(server, { path: '/ws' });
    assert.equal(server.headersTimeout, 1000);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const sock = connect((server.address() as AddressInfo).port, '127.0.0.1');
      // The request line and one header, then nothing: the headers never complete.
      sock.write('GET /ws HTTP/1.1\r\nHost: x\r\n');
      const started = performance.now();
      const answer = await new Promise<string>((resolve) => {
        let got = '';
        sock.on('data', (b: Buffer) => (got += b.toString()));
        sock.on('close', () => resolve(got));
      });
      const ms = performance.now() - started;
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.ok(ms < 10_000, `closed well before Node's 60 s default (${Math.round(ms)} ms)`);
    } finally {
      await herald.close();
      await new Promise((r) => server.close(r));
    }
  },
);

test('attach() keeps a stricter headersTimeout the app chose', async () => {
  const server = createServer((_req, res) => res.end('app'));
  server.headersTimeout = 500;
  const herald = createHerald({ logger: false, env: { HERALD_TOKEN_SECRET: SECRET, HERALD_HANDSHAKE_TIMEOUT: '10s' } });
  herald.attach(server, { path: '/ws' });
  try {
    assert.equal(server.headersTimeout, 500);
  } finally {
    await herald.close();
  }
});
