import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { engineNames } from './support/engines.js';
import { API_KEY, api, mintToken, newClient, startHerald, waitFor, type TestServer } from './support/herald.js';

const config = {
  channel: {
    withoutNamespace: { allow_subscribe_for_client: true },
    namespaces: {
      h: { allow_subscribe_for_client: true, history_size: 10, history_ttl_ms: 60_000, presence: true },
      m: { allow_subscribe_for_client: true, allow_publish_for_subscriber: true },
    },
  },
};

for (const engineName of engineNames) {
  describe(`HTTP server API (${engineName} engine)`, { timeout: 60_000 }, () => {
    let s: TestServer;
    before(async () => {
      s = await startHerald({ engineName, config, env: { HERALD_API_MAX_BODY: '4096' } });
    });
    after(() => s.close());

    test('a missing or wrong API key is refused with 401', async () => {
      const none = await fetch(`${s.httpUrl}/api/publish`, { method: 'POST', body: '{}' });
      assert.equal(none.status, 401);
      assert.equal((await api(s, 'publish', { channel: 'a', data: 1 }, 'wrong')).status, 401);
    });

    test('the key is also accepted as Authorization: apikey', async () => {
      const res = await fetch(`${s.httpUrl}/api/info`, {
        method: 'POST',
        headers: { authorization: 'apikey conformance-api-key' },
        body: '{}',
      });
      assert.equal(res.status, 200);
    });

    test('malformed JSON is refused with 400 and an oversized body with 413', async () => {
      const bad = await fetch(`${s.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { 'x-api-key': 'conformance-api-key' },
        body: '{nope',
      });
      assert.equal(bad.status, 400);
      assert.equal((await bad.json()).error.code, 107);
      const big = await fetch(`${s.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { 'x-api-key': 'conformance-api-key' },
        body: JSON.stringify({ channel: 'a', data: 'x'.repeat(10_000) }),
      });
      assert.equal(big.status, 413);
    });

    test('an unknown method answers 404 with code 104', async () => {
      const r = await api(s, 'nope', {});
      assert.equal(r.status, 404);
      assert.equal(r.json.error.code, 104);
    });

    test('an invalid channel name is a bad request', async () => {
      for (const channel of ['', 'a*b', 'a..b', 'a\u0000b', 'x'.repeat(256)]) {
        const r = await api(s, 'publish', { channel, data: 1 });
        assert.equal(r.status, 400, `channel ${JSON.stringify(channel).slice(0, 20)}`);
      }
    });

    test('publish answers offset and epoch, and history returns what was published', async () => {
      const p1 = await api(s, 'publish', { channel: 'h:one', data: { n: 1 }, tags: { kind: 'greeting' } });
      const p2 = await api(s, 'publish', { channel: 'h:one', data: { n: 2 } });
      assert.equal(p2.json.result.offset, p1.json.result.offset + 1);
      assert.equal(p2.json.result.epoch, p1.json.result.epoch);
      const h = await api(s, 'history', { channel: 'h:one', limit: 10 });
      assert.deepEqual(
        h.json.result.publications.map((p: { data: unknown }) => p.data),
        [{ n: 1 }, { n: 2 }],
      );
      assert.deepEqual(h.json.result.publications[0].tags, { kind: 'greeting' });
      assert.equal(h.json.result.offset, p2.json.result.offset);
      const removed = await api(s, 'history_remove', { channel: 'h:one' });
      assert.equal(removed.status, 200);
      const empty = await api(s, 'history', { channel: 'h:one', limit: 10 });
      assert.deepEqual(empty.json.result.publications, []);
      assert.equal(empty.json.result.offset, p2.json.result.offset);
    });

    test('an idempotency key makes a repeated publish deliver once', async () => {
      const a = await api(s, 'publish', { channel: 'h:idem', data: 1, idempotency_key: 'k1' });
      const b = await api(s, 'publish', { channel: 'h:idem', data: 1, idempotency_key: 'k1' });
      assert.deepEqual(a.json.result, b.json.result);
      const h = await api(s, 'history', { channel: 'h:idem', limit: 10 });
      assert.equal(h.json.result.publications.length, 1);
    });

    test('history on a channel without history answers 108', async () => {
      const r = await api(s, 'history', { channel: 'nohist', limit: 1 });
      assert.equal(r.json.error.code, 108);
    });

    test('broadcast publishes to several channels and reports each result', async () => {
      const r = await api(s, 'broadcast', { channels: ['h:b1', 'h:b2', 'bad*'], data: { x: 1 } });
      assert.equal(r.json.result.responses.length, 3);
      assert.equal(r.json.result.responses[0].result.offset, 1);
      assert.equal(r.json.result.responses[2].error.code, 107);
    });

    test('batch runs commands in order and reports each reply', async () => {
      const r = await api(s, 'batch', {
        commands: [
          { publish: { channel: 'h:batch', data: 1 } },
          { publish: { channel: 'h:batch', data: 2 } },
          { info: {} },
        ],
      });
      const replies = r.json.result.replies;
      assert.equal(replies[0].publish.offset, 1);
      assert.equal(replies[1].publish.offset, 2);
      assert.equal(replies[2].info.nodes.length, 1);
    });

    test('info, channels and presence report live clients', async () => {
      const c = newClient(s.wsUrl, { token: await mintToken({ sub: 'viewer' }) });
      const sub = c.newSubscription('h:live');
      const ready = new Promise((r) => sub.once('subscribed', r));
      sub.subscribe();
      c.connect();
      await ready;
      try {
        const info = await api(s, 'info', {});
        const node = info.json.result.nodes[0];
        assert.equal(node.num_clients, 1);
        assert.equal(node.num_users, 1);
        assert.ok(node.num_subs >= 1);
        assert.equal(typeof node.version, 'string');
        assert.equal(typeof node.uptime, 'number');
        const channels = await api(s, 'channels', { pattern: 'h:*' });
        assert.deepEqual(channels.json.result.channels['h:live'], { num_clients: 1 });
        const presence = await api(s, 'presence', { channel: 'h:live' });
        const entries = Object.values(presence.json.result.presence) as { user: string; client: string }[];
        assert.equal(entries.length, 1);
        assert.equal(entries[0]!.user, 'viewer');
      } finally {
        c.disconnect();
      }
    });

    test('__proto__ in an API body pollutes nothing', async () => {
      const body = '{"channel":"h:proto","data":{"__proto__":{"polluted":true}},"tags":{"__proto__":"x"}}';
      const res = await fetch(`${s.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { 'x-api-key': 'conformance-api-key' },
        body,
      });
      assert.equal(res.status, 200);
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      const h = await api(s, 'history', { channel: 'h:proto', limit: 1 });
      assert.deepEqual(Object.keys(h.json.result.publications[0].data), ['__proto__']);
    });

    test('health, readiness and metrics answer', async () => {
      assert.equal((await fetch(`${s.httpUrl}/health`)).status, 200);
      assert.equal((await fetch(`${s.httpUrl}/ready`)).status, 200);
      s.herald.setReadiness('test-check', { ok: false, reason: 'testing' });
      const notReady = await fetch(`${s.httpUrl}/ready`, { headers: { 'x-api-key': API_KEY } });
      assert.equal(notReady.status, 503);
      assert.equal((await notReady.json()).checks['test-check'], 'testing');
      const anonymous = await fetch(`${s.httpUrl}/ready`);
      assert.equal(anonymous.status, 503);
      assert.deepEqual(await anonymous.json(), { status: 'not ready', failed: ['test-check'] });
      s.herald.setReadiness('test-check', { ok: true });
      const m = await (await fetch(`${s.httpUrl}/metrics`)).text();
      for (const name of [
        'herald_connections',
        'herald_subscriptions',
        'herald_messages_in_total',
        'herald_messages_out_total',
        'herald_publish_duration_seconds',
        'herald_errors_total',
      ]) {
        assert.match(m, new RegExp(`^# HELP ${name} `, 'm'));
      }
    });

    test('herald_publications_total counts publications by source: HTTP API, in-process API and clients', async () => {
      const count = async (source: string) => {
        const m = await (await fetch(`${s.httpUrl}/metrics`)).text();
        const line = m.split('\n').find((l) => l.startsWith(`herald_publications_total{source="${source}"}`));
        return line ? Number(line.split(' ').pop()) : 0;
      };
      const before = { api: await count('api'), server: await count('server'), client: await count('client') };
      assert.equal((await api(s, 'publish', { channel: 'm:metrics', data: { n: 1 } })).status, 200);
      await s.herald.publish('m:metrics', { n: 2 });
      await s.herald.call('publish', { channel: 'm:metrics', data: { n: 3 } });
      const c = newClient(s.wsUrl, { token: await mintToken({ sub: 'metrics' }) });
      try {
        const sub = c.newSubscription('m:metrics');
        const subscribed = new Promise<void>((r) => sub.once('subscribed', () => r()));
        sub.subscribe();
        c.connect();
        await subscribed;
        await sub.publish({ n: 4 });
      } finally {
        c.disconnect();
      }
      assert.equal(await count('api'), before.api + 1);
      assert.equal(await count('server'), before.server + 2);
      assert.equal(await count('client'), before.client + 1);
    });

    test('the HTTP API is off with a clear message when no key is configured', async () => {
      const nokey = await startHerald({ engineName, env: { HERALD_API_KEY: '' } });
      try {
        const r = await api(nokey, 'info', {});
        assert.equal(r.status, 503);
        assert.match(r.json.error.message, /HERALD_API_KEY/);
      } finally {
        await nokey.close();
      }
    });

    test('a rate limit on the API answers 429 when configured', async () => {
      const limited = await startHerald({ engineName, env: { HERALD_API_RATE: '3' } });
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 8; i++) statuses.push((await api(limited, 'info', {})).status);
        assert.ok(statuses.includes(429));
        assert.equal(statuses[0], 200);
      } finally {
        await limited.close();
      }
    });

    test('in-process call() runs the same methods', async () => {
      const r = (await s.herald.call('publish', { channel: 'h:inproc', data: { ok: true } })) as { offset: number };
      assert.equal(r.offset, 1);
      await waitFor(
        async () => (await s.herald.history('h:inproc', { limit: 5 })).publications.length === 1,
        'history',
      );
    });
  });
}
