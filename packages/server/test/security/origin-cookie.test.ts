// Cross-site WebSocket hijacking: WebSockets have no CORS and a browser sends the user's cookies with any page's
// upgrade. A cookie-carrying upgrade from a foreign Origin, or with no Origin at all, is refused with 403 before
// the upgrade, so a session cookie can never open a socket for another site or a script.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startHerald, type TestServer } from '../support/herald.js';

/** Sends a WebSocket upgrade with `headers` and resolves with the HTTP status (101 when upgraded). */
function upgradeStatus(port: number, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/connection/websocket',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res
        .setEncoding('utf8')
        .on('data', (c: string) => (body += c))
        .on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('cookie-carrying upgrades and Origin', () => {
  let s: TestServer;
  let locked: TestServer;
  before(async () => {
    s = await startHerald();
    locked = await startHerald({ env: { HERALD_ALLOWED_ORIGINS: 'https://app.example.com' } });
  });
  after(async () => {
    await s.close();
    await locked.close();
  });
  const cookie = 'next-auth.session-token=eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..x.y.z';

  test('an upgrade with a session cookie and no Origin is refused with 403 before the upgrade, naming the variable', async () => {
    const r = await upgradeStatus(s.port, { cookie });
    assert.equal(r.status, 403);
    assert.match(r.body, /Origin header missing/);
    assert.match(r.body, /HERALD_ALLOWED_ORIGINS/);
  });

  test('an upgrade with a session cookie from a foreign Origin is refused with 403', async () => {
    assert.equal((await upgradeStatus(s.port, { cookie, origin: 'https://evil.example' })).status, 403);
    assert.equal((await upgradeStatus(locked.port, { cookie, origin: 'https://evil.example' })).status, 403);
  });

  test('an upgrade with a session cookie from the allowed or same-host Origin is accepted', async () => {
    assert.equal((await upgradeStatus(s.port, { cookie, origin: `http://127.0.0.1:${s.port}` })).status, 101);
    assert.equal((await upgradeStatus(locked.port, { cookie, origin: 'https://app.example.com' })).status, 101);
  });

  test('a non-browser client without cookies and without Origin (a server-side SDK) is still accepted', async () => {
    assert.equal((await upgradeStatus(s.port, {})).status, 101);
  });

  test('HERALD_COOKIE_REQUIRES_ORIGIN=false lets a cookie without Origin through for deployments that need it', async () => {
    const open = await startHerald({ env: { HERALD_COOKIE_REQUIRES_ORIGIN: 'false' } });
    try {
      assert.equal((await upgradeStatus(open.port, { cookie })).status, 101);
    } finally {
      await open.close();
    }
  });
});
