import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
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
const { HeraldProvider, HeraldClientError, useChannel, usePublish, useSubscription } = await import('../src/index.js');
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
async function mount(url: string, child: () => null): Promise<() => void> {
  const token = await mintToken({ user: { id: 'alice', name: 'alice' } }, { secret: SECRET });
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
