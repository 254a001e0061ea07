import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, mintToken, RawClient, SECRET, startHerald, type TestServer } from '../support/herald.js';
import { createHerald } from '../../src/index.js';
import { assertNothingPolluted, assertUnaffected, bystander, securityChannels, signRawHs256 } from './common.js';

/**
 * docs/security.md, "Frames and messages": `__proto__` and `constructor.prototype` in commands, HTTP API bodies,
 * token claims and config. Payloads are written as JSON text, so the keys are own properties after JSON.parse,
 * exactly as an attacker's bytes arrive. After each case: nothing polluted, and the server still serves.
 */
const HOSTILE =
  '{"__proto__":{"polluted":true,"isAdmin":true},"constructor":{"prototype":{"polluted":true,"hacked":true}}}';

describe('prototype pollution', { timeout: 60_000 }, () => {
  let s: TestServer;
  let watcher: RawClient;
  before(async () => {
    s = await startHerald({ config: securityChannels });
    watcher = await bystander(s, 'proto');
  });
  after(async () => {
    watcher.close();
    await s.close();
  });

  test('__proto__ and constructor.prototype in every field of client commands pollute nothing and are delivered as data', async () => {
    const c = await RawClient.open(s.wsUrl);
    const token = await mintToken({ sub: 'mallory' });
    c.send(
      `{"id":1,"connect":{"token":${JSON.stringify(token)},"data":${HOSTILE},"subs":${HOSTILE},"headers":{"__proto__":"x"}},"__proto__":{"polluted":true}}`,
    );
    await new Promise((r) => setTimeout(r, 50));
    // The command-level __proto__ key is not a method: refused, and the connection can still connect properly.
    c.send(`{"id":2,"connect":{"token":${JSON.stringify(token)},"data":${HOSTILE}}}`);
    assert.ok((await c.reply(2)).connect, JSON.stringify(c.messages));
    c.send(`{"id":3,"subscribe":{"channel":"proto","data":${HOSTILE},"__proto__":{"recover":true,"flag":2}}}`);
    assert.equal((await c.reply(3)).error, undefined);
    c.send(`{"id":4,"publish":{"channel":"proto","data":${HOSTILE},"__proto__":{"channel":"other"}}}`);
    assert.equal((await c.reply(4)).error, undefined, JSON.stringify(c.messages));
    c.send(`{"id":5,"history":{"channel":"proto","limit":10,"since":${HOSTILE}}}`);
    await c.reply(5);
    c.send(
      `{"id":6,"rpc":{"method":"__proto__","data":${HOSTILE}}}`,
      `{"id":7,"send":{"data":${HOSTILE}}}`,
      `{"id":8,"presence":{"channel":"proto","constructor":{"prototype":{"polluted":true}}}}`,
    );
    await c.reply(8);
    // The bystander got the hostile payload as plain data, with its keys intact.
    const pub = await waitForPub(watcher, (d) => d !== null && typeof d === 'object' && Object.hasOwn(d, '__proto__'));
    assert.deepEqual(Object.keys(pub), ['__proto__', 'constructor']);
    assertNothingPolluted();
    c.close();
    await assertUnaffected(s, watcher, 'proto');
  });

  test('__proto__ and constructor.prototype in HTTP API bodies pollute nothing', async () => {
    const call = async (method: string, body: string) => {
      const res = await fetch(`${s.httpUrl}/api/${method}`, {
        method: 'POST',
        headers: { 'x-api-key': 'conformance-api-key', 'content-type': 'application/json' },
        body,
      });
      await res.arrayBuffer();
      return { status: res.status };
    };
    assert.equal(
      (await call('publish', `{"channel":"proto","data":${HOSTILE},"__proto__":{"channel":"evil","polluted":true}}`))
        .status,
      200,
    );
    await call('publish', `{"__proto__":{"channel":"proto","data":1}}`);
    await call('broadcast', `{"channels":["proto"],"data":${HOSTILE},"constructor":{"prototype":{"polluted":true}}}`);
    await call(
      'batch',
      `{"commands":[{"publish":{"channel":"proto","data":${HOSTILE}}},{"__proto__":{"polluted":true}},{"constructor":{"prototype":{"polluted":true}}}]}`,
    );
    await call('history', `{"channel":"proto","limit":1,"since":{"__proto__":{"offset":1}}}`);
    await call('presence', `{"channel":"proto","constructor":{"prototype":{"polluted":true}}}`);
    await call('subscribe', `{"user":"nobody","channel":"proto","__proto__":{"polluted":true}}`);
    await call('__proto__', HOSTILE);
    await call('constructor', HOSTILE);
    assertNothingPolluted();
    const { status } = await api(s, 'info', {});
    assert.equal(status, 200);
    await assertUnaffected(s, watcher, 'proto');
  });

  test('__proto__ in token claims (top level, info, subs, meta) pollutes nothing and does not change the user', async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const claims =
      `{"sub":"carol","exp":${exp},"__proto__":{"sub":"admin","polluted":true},"constructor":{"prototype":{"polluted":true}},` +
      `"info":${HOSTILE},"meta":${HOSTILE},"channels":["proto"],"subs":{"__proto__":{"polluted":true},"proto":{"info":${HOSTILE}}}}`;
    const c = await RawClient.open(s.wsUrl);
    c.send({ id: 1, connect: { token: signRawHs256(claims, SECRET) } });
    const reply = await c.reply(1);
    assert.ok(reply.connect, JSON.stringify(reply));
    const info = await api(s, 'info', {});
    assert.equal(info.status, 200);
    const presence = await api(s, 'presence', { channel: 'proto' });
    const users = Object.values(presence.json.result.presence as Record<string, { user: string }>).map((p) => p.user);
    assert.ok(
      users.includes('carol'),
      `carol is subscribed to proto through the channels claim: ${JSON.stringify(users)}`,
    );
    assert.ok(!users.includes('admin'));
    assertNothingPolluted();
    c.close();
    await assertUnaffected(s, watcher, 'proto');
  });
});

test(
  '__proto__ and constructor.prototype in a config file and in explicit config pollute nothing and grant nothing',
  { timeout: 30_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-proto-'));
    const file = join(dir, 'herald.json');
    writeFileSync(
      file,
      `{"__proto__":{"polluted":true,"insecure":true},"constructor":{"prototype":{"polluted":true}},` +
        `"client":{"__proto__":{"insecure":true,"allow_anonymous_connect_without_token":true},"token":{"hmac_secret_key":"${SECRET}"}},` +
        `"channel":{"without_namespace":{"__proto__":{"allow_subscribe_for_client":true}},"namespaces":[{"name":"ok","__proto__":{"allow_subscribe_for_client":true}}]}}`,
    );
    // The file is accepted (its prototype keys are data, dropped or warned about), and nothing is polluted on the way.
    const herald = createHerald({
      logger: false,
      configFile: file,
      env: {},
      config: JSON.parse(`{"channel":{"namespaces":{"__proto__":{"allow_subscribe_for_client":true}}}}`),
    });
    assertNothingPolluted();
    const addr = await herald.listen(0, '127.0.0.1');
    try {
      const url = `ws://127.0.0.1:${addr.port}/connection/websocket`;
      // Not insecure, not anonymous: a token is still required.
      const anon = await RawClient.open(url);
      anon.send({ id: 1, connect: {} });
      assert.equal((await anon.reply(1)).error?.code, 101);
      anon.close();
      // No allow_subscribe_for_client leaked into the channel rules.
      const c = await RawClient.open(url);
      c.send({ id: 1, connect: { token: await mintToken({ sub: 'u' }) } });
      await c.reply(1);
      c.send({ id: 2, subscribe: { channel: 'plain' } }, { id: 3, subscribe: { channel: 'ok:room' } });
      assert.equal((await c.reply(2)).error?.code, 103);
      assert.equal((await c.reply(3)).error?.code, 103);
      c.close();
      assertNothingPolluted();
    } finally {
      await herald.close();
    }
  },
);

async function waitForPub(c: RawClient, match: (data: any) => boolean): Promise<any> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const m = c.messages.find((x) => x.push?.pub && match(x.push.pub.data));
    if (m) return m.push.pub.data;
    if (Date.now() > deadline) throw new Error('publication not received');
    await new Promise((r) => setTimeout(r, 5));
  }
}
