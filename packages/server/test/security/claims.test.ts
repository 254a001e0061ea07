import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { mintToken, newClient, RawClient, startHerald, waitFor, type TestServer } from '../support/herald.js';
import { assertNoStack } from './common.js';

/**
 * docs/security.md, "Auth and authorization": raw-JSON claims (`info`, `b64info`, subscription token `info`, `subs`
 * entries) are embedded into other clients' frames, so they are re-serialized as compact single-line JSON once at
 * connect or subscribe and bounded by HERALD_MAX_INFO_SIZE; the `channels` claim obeys HERALD_CHANNEL_LIMIT.
 */

const rules = {
  channel: {
    withoutNamespace: {
      allow_subscribe_for_client: true,
      allow_publish_for_subscriber: true,
      allow_history_for_subscriber: true,
      allow_presence_for_subscriber: true,
      presence: true,
      join_leave: true,
      force_push_join_leave: true,
      history_size: 10,
      history_ttl_ms: 60_000,
    },
  },
};

const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** A socket that keeps every frame's raw text, to see exactly what a subscriber is sent. */
async function rawFrames(url: string): Promise<{ ws: WebSocket; frames: string[] }> {
  const ws = new WebSocket(url);
  const frames: string[] = [];
  ws.on('message', (d) => frames.push(d.toString()));
  ws.on('error', () => {});
  await once(ws, 'open');
  return { ws, frames };
}

describe('raw-JSON claims', { timeout: 60_000 }, () => {
  let s: TestServer;
  before(async () => {
    s = await startHerald({ config: rules, env: { HERALD_MAX_INFO_SIZE: '2048', HERALD_CHANNEL_LIMIT: '5' } });
  });
  after(() => s.close());

  test('a pretty-printed b64info reaches SDK subscribers as compact JSON in join pushes, publications, presence and history, and nobody reconnects', async () => {
    const ch = 'pretty';
    const info = { name: 'Mallory', roles: ['a', 'b'], nested: { deep: true } };
    const pretty = JSON.stringify(info, null, 2);
    assert.ok(pretty.includes('\n'));

    // The victim: the official SDK, which rejects a whole frame when one of its lines is not JSON.
    const victim = newClient(s.wsUrl, { token: await mintToken({ sub: 'victim' }) });
    let connects = 0;
    victim.on('connected', () => connects++);
    const vsub = victim.newSubscription(ch, { joinLeave: true });
    const joins: any[] = [];
    const pubs: any[] = [];
    vsub.on('join', (ctx) => joins.push(ctx.info));
    vsub.on('publication', (ctx) => pubs.push(ctx));
    const subscribed = once(vsub, 'subscribed');
    vsub.subscribe();
    victim.connect();
    await subscribed;

    // A raw watcher, to check the bytes themselves.
    const watcher = await rawFrames(s.wsUrl);
    watcher.ws.send(
      JSON.stringify({ id: 1, connect: { token: await mintToken({ sub: 'watcher' }) } }) +
        '\n' +
        JSON.stringify({ id: 2, subscribe: { channel: ch, join_leave: true } }),
    );
    await waitFor(() => watcher.frames.some((f) => f.includes('"id":2')), 'the watcher subscribed');

    const mallory = await RawClient.open(s.wsUrl);
    mallory.send({ id: 1, connect: { token: await mintToken({ sub: 'mallory', b64info: b64(pretty) }) } });
    assert.ok((await mallory.reply(1)).connect);
    mallory.send({ id: 2, subscribe: { channel: ch } });
    assert.equal((await mallory.reply(2)).error, undefined);
    mallory.send({ id: 3, publish: { channel: ch, data: { text: 'hi' } } });
    assert.deepEqual((await mallory.reply(3)).publish, {});
    mallory.send({ id: 4, presence: { channel: ch } }, { id: 5, history: { channel: ch, limit: -1 } });
    const presence = (await mallory.reply(4)).presence.presence;
    const history = (await mallory.reply(5)).history;

    await waitFor(
      () => joins.some((j) => j.user === 'mallory') && pubs.length === 1,
      'the join and the publication at the SDK victim',
    );
    assert.deepEqual(joins.find((j) => j.user === 'mallory').connInfo, info);
    assert.deepEqual(pubs[0].info.connInfo, info);
    assert.deepEqual(Object.values<any>(presence).find((p) => p.user === 'mallory').conn_info, info);
    assert.deepEqual(history.publications[0].info.conn_info, info);
    assert.equal(connects, 1, 'the SDK victim never had to reconnect');

    await waitFor(() => watcher.frames.some((f) => f.includes('"pub"')), 'the publication at the raw watcher');
    for (const frame of watcher.frames) {
      for (const line of frame.split('\n'))
        assert.doesNotThrow(() => JSON.parse(line), `every line of every frame is JSON: ${line.slice(0, 80)}`);
    }
    assert.ok(
      watcher.frames.some((f) => f.includes(JSON.stringify(info))),
      'info embedded as compact JSON',
    );
    watcher.ws.terminate();
    mallory.close();
    victim.disconnect();
  });

  test('a pretty-printed b64info in a subscription token reaches subscribers as compact chan_info', async () => {
    const ch = 'pretty-sub';
    const chanInfo = { seat: 12, team: 'red' };
    const watcher = await RawClient.open(s.wsUrl);
    watcher.send(
      { id: 1, connect: { token: await mintToken({ sub: 'w2' }) } },
      { id: 2, subscribe: { channel: ch, join_leave: true } },
    );
    await watcher.reply(2);
    const c = await RawClient.open(s.wsUrl);
    c.send({ id: 1, connect: { token: await mintToken({ sub: 'sub-user' }) } });
    await c.reply(1);
    c.send({
      id: 2,
      subscribe: {
        channel: ch,
        token: await mintToken({ sub: 'sub-user', channel: ch, b64info: b64(JSON.stringify(chanInfo, null, 4)) }),
      },
    });
    assert.equal((await c.reply(2)).error, undefined);
    const join = await waitFor(() => watcher.messages.find((m) => m.push?.join?.info?.user === 'sub-user'), 'the join');
    assert.deepEqual(join.push.join.info.chan_info, chanInfo);
    c.close();
    watcher.close();
  });

  test('an info claim over HERALD_MAX_INFO_SIZE is refused with 3500 naming claim size; info at the limit connects', async () => {
    const big = { bio: 'x'.repeat(20 * 1024) }; // a 44 KB info would push the b64info token past the 64 KB message limit
    for (const claims of [
      { info: big },
      { b64info: b64(JSON.stringify(big, null, 2)) },
      { subs: { room: { info: big } } },
    ]) {
      const c = await RawClient.open(s.wsUrl);
      c.send({ id: 1, connect: { token: await mintToken({ sub: 'bigmouth', ...claims }) } });
      const closed = await c.closed();
      assert.equal(closed.code, 3500, JSON.stringify(Object.keys(claims)));
      assert.match(closed.reason, /claim too large/);
      assertNoStack(closed.reason, 'the close reason');
    }
    // {"bio":"..."}: 10 bytes of JSON around the text; 2048 bytes in all is allowed.
    const c = await RawClient.open(s.wsUrl);
    c.send({ id: 1, connect: { token: await mintToken({ sub: 'fits', info: { bio: 'x'.repeat(2048 - 10) } }) } });
    assert.ok((await c.reply(1)).connect);
    c.close();
  });

  test('a subscription token whose info is over HERALD_MAX_INFO_SIZE is refused with 103 and the connection stays', async () => {
    const c = await RawClient.open(s.wsUrl);
    c.send({ id: 1, connect: { token: await mintToken({ sub: 'subber' }) } });
    await c.reply(1);
    c.send({
      id: 2,
      subscribe: {
        channel: 'guarded',
        token: await mintToken({ sub: 'subber', channel: 'guarded', info: { x: 'y'.repeat(4096) } }),
      },
    });
    const r = await c.reply(2);
    assert.equal(r.error?.code, 103);
    assert.match(r.error.message, /claim too large/);
    c.send({ id: 3, ping: {} });
    await c.reply(3);
    assert.equal(c.closeCode, undefined);
    c.close();
  });

  test('an info claim nested deeper than HERALD_MAX_JSON_DEPTH is refused with 3500', async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    const c = await RawClient.open(s.wsUrl);
    c.send({ id: 1, connect: { token: await mintToken({ sub: 'deep', info: deep }) } });
    const closed = await c.closed();
    assert.equal(closed.code, 3500);
    assert.match(closed.reason, /claim too large or too deep/);
  });

  test('a channels claim listing more channels than HERALD_CHANNEL_LIMIT is refused with 106 and subscribes nothing; at the limit every channel is subscribed', async () => {
    const c = await RawClient.open(s.wsUrl);
    c.send({
      id: 1,
      connect: { token: await mintToken({ sub: 'greedy', channels: ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'] }) },
    });
    const r = await c.reply(1);
    assert.equal(r.error?.code, 106, JSON.stringify(r));
    assert.match(r.error.message, /HERALD_CHANNEL_LIMIT/);
    assert.equal((await s.herald.channels()).has('c1'), false, 'nothing was subscribed');
    // channels and subs together count.
    c.send({
      id: 2,
      connect: {
        token: await mintToken({ sub: 'greedy', channels: ['c1', 'c2', 'c3'], subs: { c4: {}, c5: {}, c6: {} } }),
      },
    });
    assert.equal((await c.reply(2)).error?.code, 106);
    c.send({
      id: 3,
      connect: { token: await mintToken({ sub: 'greedy', channels: ['c1', 'c2', 'c3'], subs: { c4: {}, c5: {} } }) },
    });
    const ok = await c.reply(3);
    assert.deepEqual(Object.keys(ok.connect.subs).sort(), ['c1', 'c2', 'c3', 'c4', 'c5']);
    c.close();
  });
});
