import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientInfo, Publication } from '../src/engine/types.js';
import {
  EMPTY_RESULT,
  encodeApiError,
  encodeApiResult,
  encodeBatchReply,
  encodeBatchResult,
  encodeBroadcastResult,
  encodeChannelsResultWithin,
  encodeClientInfo,
  encodeConnectResult,
  encodeDisconnectPush,
  encodeError,
  encodeHistoryResult,
  encodeInfoResult,
  encodeJoinPush,
  encodeLeavePush,
  encodeMessagePush,
  encodePresenceResultWithin,
  encodePresenceStatsResult,
  encodePublication,
  encodePublicationListWithin,
  encodePublishResult,
  encodePubPush,
  encodeRefreshResult,
  encodeReply,
  encodeRpcResult,
  encodeSubRefreshResult,
  encodeSubscribePush,
  encodeSubscribeResult,
  encodeUnsubscribePush,
  ttlSeconds,
} from '../src/protocol/replies.js';

/**
 * Payloads as the engine holds them: JSON text with spacing, key order and escapes that JSON.parse + JSON.stringify
 * would change. Finding them byte for byte in an encoder's output shows they were spliced in, not re-serialized.
 */
const DATA = '{ "b" : 1,\t"a":[1 , 2], "s":"\\u00e9\\/" }';
const CONN_INFO = '{"z":1, "a" :2}';
const CHAN_INFO = '[ "x" ]';
const info: ClientInfo = { user: 'u"1', client: 'c1', connInfo: CONN_INFO, chanInfo: CHAN_INFO };
const pub: Publication = { offset: 7, data: DATA, info, tags: { t: 'v' } };

function parsed(text: string): unknown {
  return JSON.parse(text);
}

function includesRaw(text: string, ...raws: string[]): void {
  for (const raw of raws) assert.ok(text.includes(raw), `${JSON.stringify(raw)} spliced byte for byte into ${text}`);
}

test('ttlSeconds rounds the time left up to whole seconds and is never below 1', () => {
  assert.equal(ttlSeconds(1000, 990), 10);
  assert.equal(ttlSeconds(1000, 990.2), 10);
  assert.equal(ttlSeconds(1000, 989.9), 11);
  assert.equal(ttlSeconds(1000, 1000), 1);
  assert.equal(ttlSeconds(1000, 1500), 1);
});

test('a reply carries its id and method around the result; an error without id is bare', () => {
  assert.deepEqual(parsed(encodeReply(3, 'publish', EMPTY_RESULT)), { id: 3, publish: {} });
  assert.deepEqual(parsed(encodeError(4, { code: 107, message: 'bad "x"' })), {
    id: 4,
    error: { code: 107, message: 'bad "x"' },
  });
  assert.deepEqual(parsed(encodeError(0, { code: 100, message: 'm', temporary: true })), {
    error: { code: 100, message: 'm', temporary: true },
  });
});

test('client info and publications splice conn_info, chan_info and data as they are', () => {
  const ci = encodeClientInfo(info);
  includesRaw(ci, CONN_INFO, CHAN_INFO);
  assert.deepEqual(parsed(ci), { user: 'u"1', client: 'c1', conn_info: { z: 1, a: 2 }, chan_info: ['x'] });
  assert.deepEqual(parsed(encodeClientInfo({ user: '', client: 'c' })), { user: '', client: 'c' });

  const p = encodePublication(pub);
  includesRaw(p, DATA, CONN_INFO, CHAN_INFO);
  assert.deepEqual(parsed(p), {
    data: { b: 1, a: [1, 2], s: 'é/' },
    offset: 7,
    info: { user: 'u"1', client: 'c1', conn_info: { z: 1, a: 2 }, chan_info: ['x'] },
    tags: { t: 'v' },
  });
  // No offset for channels without history, no empty tags, and a fossil delta replaces the data.
  assert.deepEqual(parsed(encodePublication({ offset: 0, data: '1', tags: {} })), { data: 1 });
  assert.deepEqual(parsed(encodePublication({ offset: 2, data: DATA }, { data: '"patch"', delta: true })), {
    data: 'patch',
    delta: true,
    offset: 2,
  });
});

test('a publication list is built only while it fits its byte budget', () => {
  const pubs: Publication[] = [
    { offset: 1, data: DATA },
    { offset: 2, data: '"é"' },
  ];
  const list = encodePublicationListWithin(pubs, 10_000)!;
  includesRaw(list, DATA);
  assert.deepEqual(parsed(list), [
    { data: { b: 1, a: [1, 2], s: 'é/' }, offset: 1 },
    { data: 'é', offset: 2 },
  ]);
  assert.equal(encodePublicationListWithin([], 0), '[]');
  const exact = Buffer.byteLength(list, 'utf8');
  assert.equal(encodePublicationListWithin(pubs, exact), list);
  assert.equal(encodePublicationListWithin(pubs, exact - 1), undefined);
});

test('a connect result has client, version, ping, expiry, hook data, the emulation session and server-side subs', () => {
  const sub = encodeSubscribeResult({ expireAt: 0, nowSec: 0, recoverable: true, delta: false, data: DATA });
  const text = encodeConnectResult({
    client: 'c1',
    version: '1.2.3',
    pingSec: 25,
    expireAt: 1100,
    nowSec: 1000.5,
    data: DATA,
    emulation: { session: 's1', node: 'n1' },
    subs: [['chat:"a"', sub]],
  });
  includesRaw(text, DATA);
  const d = { b: 1, a: [1, 2], s: 'é/' };
  assert.deepEqual(parsed(text), {
    client: 'c1',
    version: '1.2.3',
    ping: 25,
    pong: true,
    expires: true,
    ttl: 100,
    data: d,
    session: 's1',
    node: 'n1',
    subs: { 'chat:"a"': { recoverable: true, data: d } },
  });
  assert.deepEqual(
    parsed(encodeConnectResult({ client: 'c', version: 'v', pingSec: 0, expireAt: 0, nowSec: 5, subs: [] })),
    {
      client: 'c',
      version: 'v',
    },
  );
});

test('refresh and sub_refresh results say when the credentials expire, or nothing when they never do', () => {
  assert.deepEqual(parsed(encodeRefreshResult({ client: 'c', version: 'v', expireAt: 60, nowSec: 0.5 })), {
    client: 'c',
    version: 'v',
    expires: true,
    ttl: 60,
  });
  assert.deepEqual(parsed(encodeRefreshResult({ client: 'c', version: 'v', expireAt: 0, nowSec: 1 })), {
    client: 'c',
    version: 'v',
  });
  assert.deepEqual(parsed(encodeSubRefreshResult(30, 10)), { expires: true, ttl: 20 });
  assert.equal(encodeSubRefreshResult(0, 10), '{}');
});

test('a subscribe result has expiry, recoverable, delta, position and recovery in order, and the hook data raw', () => {
  const pubs = encodePublicationListWithin([{ offset: 3, data: DATA }], 10_000)!;
  const text = encodeSubscribeResult({
    expireAt: 20,
    nowSec: 10,
    recoverable: true,
    delta: true,
    position: { offset: 3, epoch: 'e"1' },
    recovery: { recovered: true, publications: pubs },
    data: CHAN_INFO,
  });
  includesRaw(text, DATA, CHAN_INFO);
  assert.equal(
    text,
    `{"expires":true,"ttl":10,"recoverable":true,"delta":true,"epoch":"e\\"1","offset":3,"positioned":true,"was_recovering":true,"recovered":true,"publications":${pubs},"data":${CHAN_INFO}}`,
  );
  // Nothing recovered: no empty publications list.
  assert.deepEqual(
    parsed(
      encodeSubscribeResult({
        expireAt: 0,
        nowSec: 0,
        recoverable: true,
        delta: false,
        position: { offset: 0, epoch: 'e' },
        recovery: { recovered: false, publications: '[]' },
      }),
    ),
    { recoverable: true, epoch: 'e', offset: 0, positioned: true, was_recovering: true, recovered: false },
  );
  assert.equal(encodeSubscribeResult({ expireAt: 0, nowSec: 0, recoverable: false, delta: false }), '{}');
});

test('history, presence, presence stats and rpc results', () => {
  const pubs = encodePublicationListWithin([pub], 10_000)!;
  const history = encodeHistoryResult(pubs, { offset: 9, epoch: 'ep' });
  includesRaw(history, DATA, CONN_INFO);
  assert.deepEqual(parsed(history), { publications: parsed(pubs), epoch: 'ep', offset: 9 });

  const entries = new Map<string, ClientInfo>([
    ['c1', info],
    ['c2', { user: 'u2', client: 'c2' }],
  ]);
  const presence = encodePresenceResultWithin(entries, 10_000, 64)!;
  includesRaw(presence.json, CONN_INFO, CHAN_INFO);
  assert.deepEqual(parsed(presence.json), {
    presence: { c1: parsed(encodeClientInfo(info)), c2: { user: 'u2', client: 'c2' } },
  });
  assert.equal(encodePresenceResultWithin(entries, presence.bytes, 64)?.json, presence.json);
  assert.equal(encodePresenceResultWithin(entries, presence.bytes - 1, 64), undefined);
  assert.deepEqual(parsed(encodePresenceResultWithin(new Map(), 64, 64)!.json), { presence: {} });

  assert.deepEqual(parsed(encodePresenceStatsResult({ numClients: 3, numUsers: 2 })), { num_clients: 3, num_users: 2 });
  const rpc = encodeRpcResult(DATA);
  includesRaw(rpc, DATA);
  assert.deepEqual(parsed(rpc), { data: { b: 1, a: [1, 2], s: 'é/' } });
});

test('pushes: publication, join, leave, unsubscribe, subscribe, message and disconnect', () => {
  const push = encodePubPush('"news"', pub);
  includesRaw(push, DATA, CONN_INFO);
  assert.deepEqual(parsed(push), { push: { channel: 'news', pub: parsed(encodePublication(pub)) } });
  assert.deepEqual(parsed(encodeJoinPush('"c"', info)), {
    push: { channel: 'c', join: { info: parsed(encodeClientInfo(info)) } },
  });
  assert.deepEqual(parsed(encodeLeavePush('"c"', { user: 'u', client: 'x' })), {
    push: { channel: 'c', leave: { info: { user: 'u', client: 'x' } } },
  });
  assert.deepEqual(parsed(encodeUnsubscribePush('a"b', 2500, 'insufficient state')), {
    push: { channel: 'a"b', unsubscribe: { code: 2500, reason: 'insufficient state' } },
  });
  assert.deepEqual(parsed(encodeSubscribePush('s', '{"recoverable":true}')), {
    push: { channel: 's', subscribe: { recoverable: true } },
  });
  const message = encodeMessagePush(DATA);
  includesRaw(message, DATA);
  assert.deepEqual(parsed(message), { push: { message: { data: { b: 1, a: [1, 2], s: 'é/' } } } });
  assert.equal(
    encodeDisconnectPush({ code: 3008, reason: 'slow "reader"' }),
    JSON.stringify({ push: { disconnect: { code: 3008, reason: 'slow "reader"' } } }),
  );
});

test('server API answers: result and error envelopes, publish, broadcast, channels, info and batch', () => {
  assert.equal(encodeApiResult('{"a":1}'), '{"result":{"a":1}}');
  assert.equal(
    encodeApiError({ code: 107, message: 'bad "x"' }),
    JSON.stringify({ error: { code: 107, message: 'bad "x"' } }),
  );
  const published = encodePublishResult({ offset: 4, epoch: 'e"' });
  assert.deepEqual(parsed(published), { offset: 4, epoch: 'e"' });
  assert.deepEqual(
    parsed(encodeBroadcastResult([encodeApiResult(published), encodeApiError({ code: 102, message: 'm' })])),
    {
      responses: [{ result: { offset: 4, epoch: 'e"' } }, { error: { code: 102, message: 'm' } }],
    },
  );

  const list: [string, number][] = [
    ['a', 1],
    ['b"', 0],
  ];
  const channels = encodeChannelsResultWithin(list, 1000, 64)!;
  assert.deepEqual(parsed(channels.json), { channels: { a: { num_clients: 1 }, 'b"': { num_clients: 0 } } });
  assert.equal(encodeChannelsResultWithin(list, channels.bytes - 1, 64), undefined);

  const nodes = [{ name: 'n', num_clients: 2 }];
  assert.equal(encodeInfoResult(nodes), JSON.stringify({ nodes }));

  const replies = [encodeBatchReply('publish', published), encodeApiError({ code: 107, message: 'm' })];
  assert.deepEqual(parsed(encodeBatchResult(replies)), {
    replies: [{ publish: { offset: 4, epoch: 'e"' } }, { error: { code: 107, message: 'm' } }],
  });
});
