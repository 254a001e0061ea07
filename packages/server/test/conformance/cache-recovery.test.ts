// force_recovery_mode "cache" (Centrifugo's cache recovery): a subscriber gets the channel's latest publication at
// subscribe time, on the real centrifuge SDK (bidirectional) and on a unidirectional stream, on every engine.
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Centrifuge, PublicationContext, SubscribedContext } from 'centrifuge';
import { engineNames } from '../support/engines.js';
import {
  api,
  encodings,
  mintToken,
  newClient,
  payload,
  startHerald,
  waitFor,
  type Encoding,
  type TestServer,
} from '../support/herald.js';

const fileConfig = {
  uni_http_stream: { enabled: true },
  channel: {
    namespaces: [
      {
        name: 'ticker',
        allow_subscribe_for_client: true,
        history_size: 1,
        history_ttl: '300s',
        force_recovery: true,
        force_recovery_mode: 'cache',
      },
      {
        name: 'doc',
        allow_subscribe_for_client: true,
        history_size: 1,
        history_ttl: '300s',
        force_recovery: true,
        force_recovery_mode: 'cache',
        auto_cache_recover: true,
      },
      { name: 'stream', allow_subscribe_for_client: true, history_size: 10, history_ttl: '300s', force_recovery: true },
    ],
  },
};

async function connectClient(s: TestServer, user: string, encoding: Encoding): Promise<Centrifuge> {
  const c = newClient(s.wsUrl, { token: await mintToken({ sub: user }) }, encoding);
  const connected = new Promise((r) => c.once('connected', r));
  c.connect();
  await connected;
  return c;
}

/** Subscribes with the SDK; every publication and every `subscribed` context, in order. */
function track(c: Centrifuge, channel: string, options: Record<string, unknown> = {}) {
  const pubs: PublicationContext[] = [];
  const subscribed: SubscribedContext[] = [];
  const sub = c.newSubscription(channel, options);
  // The protobuf build delivers data as bytes: read as the JSON they are.
  sub.on('publication', (ctx) => pubs.push({ ...ctx, data: payload(ctx.data) }));
  sub.on('subscribed', (ctx) => subscribed.push(ctx));
  sub.subscribe();
  return { sub, pubs, subscribed };
}

for (const engineName of engineNames) {
  for (const encoding of encodings) describeEngine(engineName, encoding);
}

function describeEngine(engineName: string, encoding: Encoding): void {
  // The unidirectional case is JSON only (unidirectional transports speak JSON): it runs with the JSON suite.
  const jsonTest = encoding === 'json' ? test : () => undefined;
  describe(`cache recovery [${engineName}, ${encoding}]`, () => {
    let s: TestServer;
    before(async () => {
      s = await startHerald({ engineName, fileConfig });
    });
    after(() => s.close());

    const publish = async (channel: string, data: unknown) => {
      const r = await api(s, 'publish', { channel, data });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return r.json.result as { offset: number; epoch: string };
    };

    test('a subscriber with since: {} gets only the latest publication, recovered, as its first publication', async () => {
      const ch = `ticker:eur-${engineName}-${encoding}`;
      await publish(ch, { price: 1 });
      await publish(ch, { price: 2 });
      const last = await publish(ch, { price: 3 });
      const c = await connectClient(s, 'cache-a', encoding);
      try {
        const t = track(c, ch, { since: {} });
        await waitFor(() => t.subscribed.length === 1 && t.pubs.length === 1, 'subscribed with one publication');
        assert.deepEqual(t.pubs[0]!.data, { price: 3 });
        assert.equal(t.pubs[0]!.offset, last.offset);
        assert.equal(t.subscribed[0]!.wasRecovering, true);
        assert.equal(t.subscribed[0]!.recovered, true);
        await publish(ch, { price: 4 });
        await waitFor(() => t.pubs.length === 2, 'the next live publication');
        assert.deepEqual(t.pubs[1]!.data, { price: 4 });
      } finally {
        c.disconnect();
      }
    });

    test('after a reconnect the subscriber gets the latest value, not every publication it missed', async () => {
      const ch = `ticker:usd-${engineName}-${encoding}`;
      await publish(ch, { price: 10 });
      const c = await connectClient(s, 'cache-b', encoding);
      try {
        const t = track(c, ch, { since: {} });
        await waitFor(() => t.pubs.length === 1, 'the latest value');
        c.disconnect();
        await publish(ch, { price: 11 });
        await publish(ch, { price: 12 });
        c.connect();
        await waitFor(() => t.subscribed.length === 2, 'resubscribed');
        await waitFor(() => t.pubs.length === 2, 'the latest value again');
        assert.deepEqual(
          t.pubs.map((p) => p.data),
          [{ price: 10 }, { price: 12 }],
        );
        assert.equal(t.subscribed[1]!.recovered, true);
      } finally {
        c.disconnect();
      }
    });

    test('a client already holding the latest offset is recovered with nothing to replay', async () => {
      const ch = `ticker:gbp-${engineName}-${encoding}`;
      const last = await publish(ch, { price: 5 });
      const c = await connectClient(s, 'cache-c', encoding);
      try {
        const t = track(c, ch, { since: { offset: last.offset, epoch: last.epoch } });
        await waitFor(() => t.subscribed.length === 1, 'subscribed');
        assert.equal(t.subscribed[0]!.recovered, true);
        assert.equal(t.pubs.length, 0);
      } finally {
        c.disconnect();
      }
    });

    test('an empty channel answers recovered: false and no publication, as Centrifugo does', async () => {
      const c = await connectClient(s, 'cache-d', encoding);
      try {
        const t = track(c, `ticker:empty-${engineName}-${encoding}`, { since: {} });
        await waitFor(() => t.subscribed.length === 1, 'subscribed');
        assert.equal(t.subscribed[0]!.wasRecovering, true);
        assert.equal(t.subscribed[0]!.recovered, false);
        assert.equal(t.pubs.length, 0);
      } finally {
        c.disconnect();
      }
    });

    test('with auto_cache_recover a plain subscribe gets the latest publication without asking', async () => {
      const ch = `doc:1-${engineName}-${encoding}`;
      await publish(ch, { v: 'draft' });
      await publish(ch, { v: 'final' });
      const c = await connectClient(s, 'cache-e', encoding);
      try {
        const t = track(c, ch);
        await waitFor(() => t.pubs.length === 1, 'the latest value');
        assert.deepEqual(t.pubs[0]!.data, { v: 'final' });
      } finally {
        c.disconnect();
      }
    });

    test('stream mode still replays every missed publication (cache mode is per namespace)', async () => {
      const ch = `stream:1-${engineName}-${encoding}`;
      const first = await publish(ch, 1);
      await publish(ch, 2);
      await publish(ch, 3);
      const c = await connectClient(s, 'cache-f', encoding);
      try {
        const t = track(c, ch, { since: { offset: first.offset, epoch: first.epoch } });
        await waitFor(() => t.pubs.length === 2, 'both missed publications');
        assert.deepEqual(
          t.pubs.map((p) => p.data),
          [2, 3],
        );
      } finally {
        c.disconnect();
      }
    });

    jsonTest(
      'a unidirectional connection gets the latest value in its connect push for a server-side subscription',
      async () => {
        const ch = `doc:2-${engineName}-${encoding}`;
        await publish(ch, { v: 1 });
        await publish(ch, { v: 2 });
        const abort = new AbortController();
        const res = await fetch(`${s.httpUrl}/connection/uni_http_stream`, {
          method: 'POST',
          body: JSON.stringify({ token: await mintToken({ sub: 'cache-uni', channels: [ch] }) }),
          signal: abort.signal,
        });
        try {
          const reader = res.body!.getReader();
          let text = '';
          while (!text.includes('\n')) text += new TextDecoder().decode((await reader.read()).value);
          const sub = JSON.parse(text.split('\n')[0]!).connect.subs[ch];
          assert.equal(sub.recovered, true);
          assert.deepEqual(
            sub.publications.map((p: { data: unknown }) => p.data),
            [{ v: 2 }],
          );
        } finally {
          abort.abort();
        }
      },
    );
  });
}

test('force_recovery_mode "cache" without recovery is refused at start with what to set', async () => {
  await assert.rejects(
    startHerald({
      fileConfig: {
        channel: { without_namespace: { history_size: 1, history_ttl: '60s', force_recovery_mode: 'cache' } },
      },
    }),
    /force_recovery_mode "cache".*set force_recovery/,
  );
});
