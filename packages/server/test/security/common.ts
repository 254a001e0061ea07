import { createHmac } from 'node:crypto';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mintToken, RawClient, type TestServer } from '../support/herald.js';
import { rawUpgrade, type RawWs } from './raw.js';

/** Channel rules shared by the security tests: open channels without namespace, a private and a user-limited one. */
export const securityChannels = {
  channel: {
    withoutNamespace: {
      allow_subscribe_for_client: true,
      allow_publish_for_subscriber: true,
      history_size: 10,
      history_ttl_ms: 60_000,
      presence: true,
      allow_history_for_subscriber: true,
      allow_presence_for_subscriber: true,
    },
    namespaces: {
      // private: no allow_* option, so only a subscription token admits a subscriber
      priv: {
        history_size: 10,
        history_ttl_ms: 60_000,
        presence: true,
        allow_history_for_subscriber: true,
        allow_presence_for_subscriber: true,
      },
      // user-limited: dm:room#alice,bob admits only alice and bob
      dm: {
        allow_user_limited_channels: true,
        allow_subscribe_for_client: true,
        history_size: 10,
        history_ttl_ms: 60_000,
        presence: true,
        allow_history_for_subscriber: true,
        allow_presence_for_subscriber: true,
        allow_history_for_client: true,
        allow_presence_for_client: true,
      },
    },
  },
};

/** Text that would betray a stack trace or a source path in a reply or close reason. */
export function assertNoStack(text: string, what: string): void {
  assert.doesNotMatch(
    text,
    /\bat [\w.<>$]+ \(|node:internal|\.(?:ts|js|mjs):\d+|\n\s+at /,
    `${what} carries no stack trace: ${text.slice(0, 200)}`,
  );
}

/** A raw socket that is upgraded and connected as `user`. */
export async function connectedRaw(s: TestServer, user = 'alice'): Promise<RawWs> {
  const ws = await rawUpgrade(s.port);
  assert.equal(ws.status, 101, ws.head);
  ws.sendText(JSON.stringify({ id: 1, connect: { token: await mintToken({ sub: user }) } }));
  const deadline = Date.now() + 5000;
  while (!ws.texts().some((t) => t.includes('"id":1'))) {
    if (Date.now() > deadline) throw new Error('no connect reply');
    await new Promise((r) => setTimeout(r, 5));
  }
  return ws;
}

/** A well-behaved client subscribed to `channel`, to prove that others are unaffected by an attack. */
export async function bystander(s: TestServer, channel: string): Promise<RawClient> {
  const c = await RawClient.open(s.wsUrl);
  c.send({ id: 1, connect: { token: await mintToken({ sub: 'bystander' }) } });
  await c.reply(1);
  c.send({ id: 2, subscribe: { channel } });
  const r = await c.reply(2);
  assert.equal(r.error, undefined, JSON.stringify(r));
  return c;
}

/** After an attack: the bystander is still open and receives a fresh publication, and /health answers. */
export async function assertUnaffected(s: TestServer, c: RawClient, channel: string): Promise<void> {
  assert.equal(c.closeCode, undefined, 'the bystander is still connected');
  const marker = `after-${Math.random()}`;
  await s.herald.publish(channel, { marker });
  const deadline = Date.now() + 5000;
  while (!c.messages.some((m) => m.push?.pub?.data?.marker === marker)) {
    if (Date.now() > deadline) throw new Error('the bystander did not receive the publication after the attack');
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal((await fetch(`${s.httpUrl}/health`)).status, 200);
}

let gcFn: (() => void) | undefined;
/** Full garbage collection without --expose-gc (for heap measurements). */
export function gc(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

export function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Objects whose prototypes an attacker would like to reach. */
export function assertNothingPolluted(): void {
  const probes: Record<string, unknown>[] = [
    {},
    Object.create(Object.prototype),
    [] as unknown as Record<string, unknown>,
    new Map() as unknown as Record<string, unknown>,
  ];
  for (const key of ['polluted', 'isAdmin', 'allow_subscribe_for_client', 'hacked']) {
    for (const p of probes) assert.equal(p[key], undefined, `({}).${key} is undefined`);
    assert.equal((Object.prototype as Record<string, unknown>)[key], undefined, `Object.prototype.${key} is undefined`);
    assert.equal(
      (Function.prototype as unknown as Record<string, unknown>)[key],
      undefined,
      `Function.prototype.${key} is undefined`,
    );
  }
}

/** An HS256 JWT over exact JSON text (so keys like "__proto__" survive, which an object literal would swallow). */
export function signRawHs256(payloadJson: string, secret: string, headerJson = '{"alg":"HS256","typ":"JWT"}'): string {
  const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
  const input = `${b64(headerJson)}.${b64(payloadJson)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
