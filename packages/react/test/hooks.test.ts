import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { createHerald, type Herald } from '@herald/server';
import { mintToken } from '@herald/next';

// React DOM's client renderer, with effects, against a real Herald. It needs a `window` and a container; the
// components below render nothing (null), so React never creates a DOM node and this much of a host is all it reads.
const host = { HTMLIFrameElement: class {}, event: undefined, document: {} as Record<string, unknown> };
host.document = {
  nodeType: 9,
  defaultView: host,
  activeElement: null,
  addEventListener() {},
  removeEventListener() {},
};
(globalThis as Record<string, unknown>).window = host;
const newContainer = () => ({
  nodeType: 1,
  nodeName: 'DIV',
  tagName: 'DIV',
  ownerDocument: host.document,
  textContent: '',
  firstChild: null,
  addEventListener() {},
  removeEventListener() {},
});

const { createElement } = await import('react');
const { createRoot } = await import('react-dom/client');
const { HeraldProvider, HeraldClientError, useChannel, usePresence, usePublish, useSubscription } =
  await import('../src/index.js');
type ChannelState = import('../src/index.js').ChannelState;

const SECRET = 'test-secret-for-herald-react-tests-0123456789';
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function startHerald(): Promise<{ herald: Herald; url: string }> {
  const herald = createHerald({
    env: { HERALD_TOKEN_SECRET: SECRET },
    fileConfig: {
      channel: {
        namespaces: [{ name: 'chat', allow_subscribe_for_client: true, allow_publish_for_subscriber: true }],
      },
    },
    logger: false,
  });
  const addr = await herald.listen(0, '127.0.0.1');
  cleanups.push(() => herald.close());
  return { herald, url: `ws://127.0.0.1:${addr.port}/ws` };
}

async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Mounts `child` under a HeraldProvider connected as alice; returns the unmount function. */
async function mount(url: string, child: () => null, secret = SECRET): Promise<() => void> {
  const token = await mintToken({ user: { id: 'alice', name: 'alice' } }, { secret });
  // A container of its own: React warns (console.error) about a second root on one container.
  const root = createRoot(newContainer() as unknown as Element, {
    onUncaughtError: (e) => {
      throw e;
    },
  });
  root.render(createElement(HeraldProvider, { url, websocket: WebSocket, token }, createElement(child)));
  let mounted = true;
  const unmount = () => {
    if (mounted) root.unmount();
    mounted = false;
  };
  cleanups.push(unmount);
  return unmount;
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

test('useChannel on a namespace the server does not have shows code 102 with its fix, the console has one line, and useSubscription still returns the status string', async () => {
  const { url } = await startHerald();
  let channel: ChannelState | undefined;
  let status: string | undefined;
  const printed = await consoleErrors(async () => {
    const unmount = await mount(url, () => {
      channel = useChannel('news:lobby');
      status = useSubscription('news:lobby');
      return null;
    });
    await waitFor('the refusal in the hook', () => channel?.error);
    unmount();
  });
  assert.equal(channel!.status, 'unsubscribed');
  assert.equal(status, 'unsubscribed');
  const e = channel!.error!;
  assert.ok(e instanceof HeraldClientError);
  assert.equal(e.code, 102);
  assert.match(e.message, /Herald refused the subscription to news:lobby with 102 \(unknown channel\)/);
  assert.match(e.fix, /add namespace "news" to the server's config/);
  assert.equal(printed.length, 1, printed.join('\n---\n'));
  assert.match(printed[0]!, /^\[herald\] Herald refused the subscription to news:lobby with 102/);
  assert.match(printed[0]!, /@herald\/server\/docs\/configuration\.md/);
});

test('useChannel on an allowed channel is subscribed with no error and receives publications', async () => {
  const { herald, url } = await startHerald();
  let channel: ChannelState | undefined;
  const got: unknown[] = [];
  await mount(url, () => {
    channel = useChannel('chat:lobby', (pub) => got.push(pub.data));
    return null;
  });
  await waitFor('subscribed', () => channel?.status === 'subscribed');
  assert.deepEqual(channel, { status: 'subscribed' });
  await herald.publish('chat:lobby', { text: 'hi' });
  await waitFor('the publication', () => got.length === 1);
  assert.deepEqual(got, [{ text: 'hi' }]);
});

test('usePublish rejects with a HeraldClientError carrying 103 and its fix when the namespace does not allow it', async () => {
  const { url } = await startHerald();
  let publish: ((channel: string, data: unknown) => Promise<void>) | undefined;
  let state: string | undefined;
  const printed = await consoleErrors(async () => {
    await mount(url, () => {
      publish = usePublish();
      state = useChannel('chat:other').status;
      return null;
    });
    await waitFor('subscribed to another channel', () => state === 'subscribed');
    // chat lets subscribers publish, and this client is not subscribed to chat:lobby.
    await assert.rejects(publish!('chat:lobby', { text: 'hi' }), (err: unknown) => {
      assert.ok(err instanceof HeraldClientError);
      assert.equal(err.code, 103);
      assert.equal(err.channel, 'chat:lobby');
      assert.match(err.fix, /"allow_publish_for_subscriber": true on the "chat" namespace/);
      return true;
    });
  });
  assert.equal(printed.length, 1);
  assert.match(printed[0]!, /Herald refused a publish to chat:lobby with 103 \(permission denied\)/);
});

/**
 * A WebSocket relay in front of Herald that holds the first presence reply it sees until a join push has passed it:
 * the order in which a presence snapshot taken before a join reaches the client when the engine's read and the join's
 * fan-out race (the Redis engine).
 */
async function presenceHoldingRelay(target: string): Promise<{ url: string; held: Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
  let onHeld!: () => void;
  const held = new Promise<void>((r) => (onHeld = r));
  let holding: string | undefined;
  let used = false;
  wss.on('connection', (client) => {
    const upstream = new WebSocket(target);
    const queued: string[] = [];
    upstream.on('open', () => queued.splice(0).forEach((m) => upstream.send(m)));
    client.on('message', (m) =>
      upstream.readyState === WebSocket.OPEN ? upstream.send(String(m)) : queued.push(String(m)),
    );
    upstream.on('message', (m) => {
      const text = String(m);
      if (!used && /"presence":\{"presence"/.test(text)) {
        used = true;
        holding = text;
        onHeld();
        return;
      }
      client.send(text);
      if (holding !== undefined && /"join":/.test(text)) {
        client.send(holding);
        holding = undefined;
      }
    });
    client.on('close', () => upstream.close());
    upstream.on('close', () => client.close());
  });
  const { port } = wss.address() as { port: number };
  return { url: `ws://127.0.0.1:${port}/ws`, held };
}

test('usePresence keeps a user who joined while its presence request was in flight, when the answer predates the join', async () => {
  const secret = 'presence-race-secret-0123456789abcdef';
  const herald = createHerald({
    env: { HERALD_TOKEN_SECRET: secret },
    fileConfig: {
      channel: {
        namespaces: [
          {
            name: 'chat',
            presence: true,
            join_leave: true,
            allow_subscribe_for_client: true,
            allow_presence_for_subscriber: true,
          },
        ],
      },
    },
    logger: false,
  });
  const addr = await herald.listen(0, '127.0.0.1');
  cleanups.push(() => herald.close());
  const relay = await presenceHoldingRelay(`ws://127.0.0.1:${addr.port}/ws`);
  let members: string[] = [];
  await mount(
    relay.url,
    () => {
      members = usePresence('chat:lobby').map((m) => m.user);
      return null;
    },
    secret,
  );
  await relay.held;
  // Bob joins (directly) while alice's presence answer, which lists only alice, is held back.
  const bob = new WebSocket(`ws://127.0.0.1:${addr.port}/ws`);
  cleanups.push(() => bob.close());
  await new Promise((r) => bob.once('open', r));
  const bobToken = await mintToken({ user: { id: 'bob', name: 'bob' } }, { secret });
  bob.send(
    `${JSON.stringify({ id: 1, connect: { token: bobToken } })}\n${JSON.stringify({ id: 2, subscribe: { channel: 'chat:lobby' } })}`,
  );
  await waitFor('alice and bob shown', () => members.length === 2);
  // Past the held answer: what is shown stays both users.
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(members, ['alice', 'bob']);
});
