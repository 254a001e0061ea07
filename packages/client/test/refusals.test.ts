import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { mintToken } from '@herald/next';
import { HeraldError } from '@herald/server';
import {
  createHeraldClient,
  errorCodeNames,
  fixFor,
  HeraldClientError,
  type Diagnosis,
  type HeraldClientOptions,
} from '../src/index.js';
import { SECRET, startHerald, waitFor } from './support.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A connected client for user alice on a real Herald, retrying fast, that records its diagnoses. */
async function connected(url: string, extra: Partial<HeraldClientOptions> = {}) {
  const diagnoses: Diagnosis[] = [];
  const client = createHeraldClient({
    url,
    websocket: WebSocket,
    token: await mintToken({ user: { id: 'alice', name: 'alice' } }, { secret: SECRET }),
    diagnose: (d) => diagnoses.push(d),
    centrifuge: { minReconnectDelay: 50, maxReconnectDelay: 100 },
    ...extra,
  });
  cleanups.push(() => client.disconnect());
  client.connect();
  await waitFor('connected', () => client.state === 'connected');
  return { client, diagnoses };
}

/** Runs `fn` with console.error captured; returns what it printed, one entry per call. */
async function consoleErrors(fn: () => Promise<void>): Promise<string[]> {
  const printed: string[] = [];
  const saved = console.error;
  console.error = (...args: unknown[]) => printed.push(args.map(String).join(' '));
  try {
    await fn();
  } finally {
    console.error = saved;
  }
  return printed;
}

function subscriptionToken(channel: string, expSecondsFromNow: number): Promise<string> {
  return new SignJWT({ channel })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('alice')
    .setExpirationTime(Math.floor(Date.now() / 1000) + expSecondsFromNow)
    .sign(new TextEncoder().encode(SECRET));
}

test('a subscribe to a namespace the server does not have prints exactly one console line naming the fix, and the subscription carries code 102', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  const printed = await consoleErrors(async () => {
    const { client } = await connected(h.url, { diagnose: true });
    const first = client.retain('news:lobby');
    await waitFor('the refusal', () => first.error());
    assert.equal(first.sub.state, 'unsubscribed');
    first.release();
    // The page mounts it again (a remount, a second component): the cause is not printed again.
    const again = client.retain('news:lobby');
    await waitFor('the second refusal', () => again.error());
    const e = again.error()!;
    assert.ok(e instanceof HeraldClientError);
    assert.equal(e.code, 102);
    assert.equal(e.operation, 'subscribe');
    assert.equal(e.channel, 'news:lobby');
    assert.match(e.reason, /namespace "news" is not configured/);
    assert.match(e.fix, /herald\.config\.json/);
    assert.equal(client.subscriptionError('news:lobby'), e);
    again.release();
    client.disconnect();
  });
  assert.equal(printed.length, 1, printed.join('\n---\n'));
  const line = printed[0]!;
  assert.ok(!line.includes('\n'), line);
  assert.match(line, /^\[herald\] Herald refused the subscription to news:lobby with 102 \(unknown channel\): /);
  assert.match(line, /namespace "news" is not configured/);
  assert.match(line, /"namespaces":\[\{"name":"news"/);
  assert.match(line, /@herald\/server\/docs\/configuration\.md/);
  assert.match(line, new RegExp(`npx herald doctor ws://127\\.0\\.0\\.1:${h.port}/ws --channel news:lobby`));
});

test('a publish the namespace does not allow rejects with a HeraldClientError carrying 103 and the fix, printed once', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  const { client, diagnoses } = await connected(h.url);
  // chat allows publishing to subscribers only, and this client has not subscribed.
  for (let i = 0; i < 2; i++) {
    await assert.rejects(client.publish('chat:lobby', { text: 'hi' }), (err: unknown) => {
      assert.ok(err instanceof HeraldClientError);
      assert.equal(err.code, 103);
      assert.equal(err.operation, 'publish');
      assert.match(err.reason, /publish needs allow_publish_for_client or allow_publish_for_subscriber/);
      assert.match(err.fix, /"allow_publish_for_subscriber": true on the "chat" namespace/);
      assert.match(err.message, /^Herald refused a publish to chat:lobby with 103 \(permission denied\)/);
      return true;
    });
  }
  assert.equal(diagnoses.length, 1);
  assert.equal(diagnoses[0]!.cause, 'publish_refused');
  assert.equal(diagnoses[0]!.code, 103);
  assert.equal(diagnoses[0]!.channel, 'chat:lobby');
});

test('a subscription token source that only hands out expired tokens gives one 109 line after the fresh token was stale too', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  const { client, diagnoses } = await connected(h.url);
  let calls = 0;
  const r = client.retain('chat:private', {
    getToken: () => {
      calls++;
      return subscriptionToken('chat:private', -60);
    },
    minResubscribeDelay: 20,
    maxResubscribeDelay: 50,
  });
  await waitFor('four subscription token fetches', () => calls >= 4);
  assert.equal(diagnoses.length, 1, diagnoses.map((d) => d.message).join('\n'));
  const d = diagnoses[0]!;
  assert.equal(d.cause, 'subscribe_refused');
  assert.equal(d.code, 109);
  assert.match(d.message, /Herald refused the subscription to chat:private with 109 \(token expired\)/);
  assert.match(d.message, /getToken that mints a fresh token on each call/);
  assert.equal(r.error()?.code, 109);
  assert.equal(r.sub.state, 'subscribing');
  r.release();
});

test('a single expired subscription token is routine: the fresh one subscribes and nothing is printed', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  const { client, diagnoses } = await connected(h.url);
  let calls = 0;
  const r = client.retain('chat:private', {
    getToken: () => subscriptionToken('chat:private', ++calls === 1 ? -60 : 300),
    minResubscribeDelay: 20,
    maxResubscribeDelay: 50,
  });
  await waitFor('subscribed', () => r.sub.state === 'subscribed');
  assert.equal(calls, 2);
  assert.deepEqual(diagnoses, []);
  assert.equal(r.error(), undefined);
  r.release();
});

test('a fixed subscription token that has expired, with no getToken: the 109 line says so and the subscription stops', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  const { client, diagnoses } = await connected(h.url);
  const r = client.retain('chat:private', { token: await subscriptionToken('chat:private', -60) });
  await waitFor('the refusal', () => r.error());
  await waitFor('unsubscribed', () => r.sub.state === 'unsubscribed');
  assert.equal(r.error()!.code, 109);
  assert.equal(diagnoses.length, 1);
  assert.equal(diagnoses[0]!.code, 109);
  assert.match(diagnoses[0]!.message, /fixed token and no getToken/);
  r.release();
});

test('a temporary refusal (100) is the error while the SDK retries, and clears once the subscription succeeds', async () => {
  let refusals = 1;
  const h = await startHerald(
    {},
    {
      hooks: {
        onSubscribe: () => {
          if (refusals-- > 0) throw new HeraldError(100, 'engine unavailable');
        },
      },
    },
  );
  cleanups.push(() => h.herald.close());
  const { client, diagnoses } = await connected(h.url);
  const r = client.retain('chat:lobby', { minResubscribeDelay: 20, maxResubscribeDelay: 50 });
  const seen: Array<number | undefined> = [];
  r.onError((e) => seen.push(e?.code));
  await waitFor('subscribed', () => r.sub.state === 'subscribed');
  assert.deepEqual(seen, [100, undefined]);
  assert.equal(r.error(), undefined);
  assert.equal(diagnoses.length, 1);
  assert.equal(diagnoses[0]!.code, 100);
  assert.match(diagnoses[0]!.message, /with 100 \(internal\): engine unavailable/);
  assert.match(diagnoses[0]!.message, /the client retries/);
  r.release();
});

test('presence on a channel without presence rejects with 108 and the option to set', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  const { client, diagnoses } = await connected(h.url);
  await assert.rejects(client.presence('lobby'), (err: unknown) => {
    assert.ok(err instanceof HeraldClientError);
    assert.equal(err.code, 108);
    assert.match(err.fix, /"presence": true on channel\.without_namespace/);
    return true;
  });
  assert.equal(diagnoses[0]?.cause, 'presence_refused');
});

test('a server unsubscribe ends the subscription with 2000, its line and its error', async () => {
  const h = await startHerald();
  cleanups.push(() => h.herald.close());
  const { client, diagnoses } = await connected(h.url);
  const r = client.retain('chat:lobby');
  await waitFor('subscribed', () => r.sub.state === 'subscribed');
  await h.herald.call('unsubscribe', { user: 'alice', channel: 'chat:lobby' });
  await waitFor('the error', () => r.error());
  assert.equal(r.error()!.code, 2000);
  assert.equal(r.sub.state, 'unsubscribed');
  assert.equal(diagnoses.length, 1);
  assert.equal(diagnoses[0]!.cause, 'unsubscribed_by_server');
  assert.match(diagnoses[0]!.message, /Herald ended the subscription to chat:lobby with 2000/);
  r.release();
});

test('every error reply code in docs/codes.md has its name here and a fix of its own', () => {
  const doc = readFileSync(new URL('../../../docs/codes.md', import.meta.url), 'utf8');
  const table = doc.slice(doc.indexOf('## Error replies'), doc.indexOf('## Unsubscribe push codes'));
  const rows = [...table.matchAll(/^\| (\d{3}) \| ([a-z ]+) \|/gm)].map((m) => [Number(m[1]), m[2]!] as const);
  assert.ok(rows.length >= 14, `found ${rows.length} rows`);
  const fallback = fixFor('subscribe', 'chat:lobby', 999, '');
  for (const [code, name] of rows) {
    assert.equal(errorCodeNames[code], name, `code ${code}`);
    for (const op of ['subscribe', 'publish'] as const) {
      assert.notEqual(fixFor(op, 'chat:lobby', code, ''), fallback, `no fix of its own for ${op} ${code}`);
    }
  }
});
