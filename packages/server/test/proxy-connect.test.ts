import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RawClient, mintToken, newClient, startHerald, waitFor, type TestServer } from './support/herald.js';
import { Backend, capturingLogger, hang, raw, status } from './support/proxy-backend.js';
import { ConfigError, loadConfig } from '../src/index.js';

/** Connect and refresh proxies over a real HTTP backend, driven by the centrifuge SDK. */
describe('connect proxy', { timeout: 60_000 }, () => {
  let backend: Backend;
  let s: TestServer;
  let logs: ReturnType<typeof capturingLogger>;

  before(async () => {
    backend = await Backend.start();
    logs = capturingLogger();
    s = await startHerald({
      env: { HERALD_ALLOWED_ORIGINS: 'http://app.test' },
      logger: logs.logger,
      fileConfig: {
        client: {
          proxy: {
            connect: {
              enabled: true,
              endpoint: backend.url('/connect'),
              timeout: '300ms',
              http_headers: ['Cookie', 'Authorization'],
              emulated_headers: ['X-App-Token'],
              include_connection_meta: true,
              max_response_size: 4096,
              http: { static_headers: { 'X-Herald-Secret': 's3cret' } },
            },
          },
        },
        channel: {
          proxy: { subscribe: { endpoint: backend.url('/subscribe'), include_connection_meta: true } },
          without_namespace: { allow_subscribe_for_client: true, presence: true },
          namespaces: [{ name: 'room', subscribe_proxy_enabled: true }],
        },
      },
      hooks: {
        onConnecting: ({ data }) =>
          (data as { hook?: string } | undefined)?.hook
            ? { user: `hook-${(data as { hook: string }).hook}` }
            : undefined,
      },
    });
  });
  after(async () => {
    await s.close();
    await backend.close();
  });
  beforeEach(() => {
    backend.requests.length = 0;
    logs.lines.length = 0;
  });

  test('a browser connects with only its session cookie: the backend gets the cookie and names the user', async () => {
    backend.on('/connect', (req) =>
      req.headers.cookie === 'session=abc'
        ? { result: { user: 'alice', info: { name: 'Alice' }, data: { greeting: 'hi' } } }
        : { disconnect: { code: 4501, reason: 'unauthorized' } },
    );
    // The cookie rides on the upgrade request, as a browser sends it to its own origin.
    class CookieSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, {
          headers: { origin: 'http://app.test', cookie: 'session=abc', authorization: 'Bearer t', 'x-other': 'no' },
        });
      }
    }
    const c = newClient(s.wsUrl, { websocket: CookieSocket, name: 'browser' });
    const sub = c.newSubscription('lobby');
    const subscribed = new Promise((r) => sub.once('subscribed', r));
    const connected = new Promise<{ client: string; data: unknown }>((r) => c.once('connected', r));
    sub.subscribe();
    c.connect();
    const ctx = await connected;
    await subscribed;
    assert.deepEqual(ctx.data, { greeting: 'hi' });
    const req = backend.to('/connect')[0]!;
    assert.equal(req.body.client, ctx.client);
    assert.equal(req.body.transport, 'websocket');
    assert.equal(req.body.protocol, 'json');
    assert.equal(req.body.encoding, 'json');
    assert.equal(req.body.name, 'browser');
    assert.equal(req.headers.cookie, 'session=abc');
    assert.equal(req.headers.authorization, 'Bearer t');
    assert.equal(req.headers['x-other'], undefined, 'a header not in http_headers is not forwarded');
    assert.equal(req.headers['x-herald-secret'], 's3cret');
    assert.equal(req.headers['content-type'], 'application/json');
    // The user and info the backend named are the connection's: presence shows them.
    const presence = await s.herald.presence('lobby');
    const me = presence.get(ctx.client)!;
    assert.equal(me.user, 'alice');
    assert.deepEqual(JSON.parse(me.connInfo!), { name: 'Alice' });
    c.disconnect();
  });

  test('a disconnect answer closes the connection with the backend code and the SDK does not reconnect (4501)', async () => {
    backend.on('/connect', () => ({ disconnect: { code: 4501, reason: 'no session' } }));
    const c = newClient(s.wsUrl);
    const disc = new Promise<{ code: number; reason: string }>((r) => c.once('disconnected', r));
    c.connect();
    const ctx = await disc;
    assert.equal(ctx.code, 4501);
    assert.equal(ctx.reason, 'no session');
  });

  test('an error answer is the connect reply error (code, message, temporary)', async () => {
    backend.on('/connect', () => ({ error: { code: 1403, message: 'banned' } }));
    const raw1 = await RawClient.open(s.wsUrl);
    raw1.send({ id: 1, connect: {} });
    const r = await raw1.reply(1);
    assert.deepEqual(r.error, { code: 1403, message: 'banned' });
    raw1.close();
  });

  test('a token connects without asking the backend (Centrifugo: the proxy is for connections without a token)', async () => {
    backend.on('/connect', () => ({ result: { user: 'never' } }));
    const c = newClient(s.wsUrl, { token: await mintToken({ sub: 'carol' }) });
    const connected = new Promise((r) => c.once('connected', r));
    c.connect();
    await connected;
    assert.equal(backend.to('/connect').length, 0);
    c.disconnect();
  });

  test('the onConnecting hook runs first: when it authenticates, the proxy is not called; when not, it is', async () => {
    backend.on('/connect', () => ({ result: { user: 'from-proxy' } }));
    const raw1 = await RawClient.open(s.wsUrl);
    raw1.send({ id: 1, connect: { data: { hook: 'x' } } });
    assert.ok((await raw1.reply(1)).connect);
    assert.equal(backend.to('/connect').length, 0);
    raw1.close();
    const raw2 = await RawClient.open(s.wsUrl);
    raw2.send({ id: 1, connect: { data: { other: 1 } } });
    assert.ok((await raw2.reply(1)).connect);
    assert.equal(backend.to('/connect').length, 1);
    assert.deepEqual(backend.to('/connect')[0]!.body.data, { other: 1 });
    raw2.close();
  });

  test('emulated headers are forwarded only when listed in emulated_headers; the transport header wins', async () => {
    backend.on('/connect', () => ({ result: { user: 'dan' } }));
    const raw1 = await RawClient.open(s.wsUrl, { headers: { authorization: 'Bearer real' } });
    raw1.send({
      id: 1,
      connect: { headers: { 'X-App-Token': 'tok', Authorization: 'Bearer forged', 'X-Not-Listed': 'x' } },
    });
    assert.ok((await raw1.reply(1)).connect);
    const h = backend.to('/connect')[0]!.headers;
    assert.equal(h['x-app-token'], 'tok');
    assert.equal(h.authorization, 'Bearer real');
    assert.equal(h['x-not-listed'], undefined);
    raw1.close();
  });

  test('server-side channels and subs from the answer subscribe the connection, with their data', async () => {
    backend.on('/connect', () => ({
      result: { user: 'erin', channels: ['news'], subs: { alerts: { data: { welcome: true } } } },
    }));
    const c = newClient(s.wsUrl);
    const subscribed: Record<string, unknown> = {};
    c.on('subscribed', (ctx) => (subscribed[ctx.channel] = ctx.data ?? null));
    const connected = new Promise((r) => c.once('connected', r));
    c.connect();
    await connected;
    await waitFor(() => Object.keys(subscribed).length === 2, 'two server-side subscriptions');
    assert.deepEqual(subscribed.alerts, { welcome: true });
    c.disconnect();
  });

  test('meta from the connect answer is sent to the subscribe proxy (include_connection_meta), never to the client', async () => {
    backend.on('/connect', () => ({ result: { user: 'fay', meta: { tenant: 't1' } } }));
    backend.on('/subscribe', () => ({ result: {} }));
    const raw1 = await RawClient.open(s.wsUrl);
    raw1.send({ id: 1, connect: {} }, { id: 2, subscribe: { channel: 'room:1' } });
    const r = await raw1.reply(1);
    assert.equal(JSON.stringify(r).includes('tenant'), false);
    assert.ok((await raw1.reply(2)).subscribe);
    assert.deepEqual(backend.to('/subscribe')[0]!.body.meta, { tenant: 't1' });
    assert.equal(backend.to('/subscribe')[0]!.body.user, 'fay');
    raw1.close();
  });

  async function closeFor(reply: Parameters<Backend['on']>[1]): Promise<{ code: number; reason: string }> {
    backend.on('/connect', reply);
    const raw1 = await RawClient.open(s.wsUrl);
    raw1.send({ id: 1, connect: {} });
    const closed = await raw1.closed(5000);
    raw1.close();
    return closed;
  }

  test('a backend that answers 500 closes the connection with 3050 (the SDK reconnects) and logs one warning', async () => {
    const closed = await closeFor(() => status(500, 'boom'));
    assert.equal(closed.code, 3050);
    const warns = logs.lines.filter((l) => l.level === 40);
    assert.equal(warns.length, 1);
    assert.equal(warns[0].proxy, 'default');
    assert.equal(warns[0].kind, 'connect');
    assert.match(warns[0].problem, /HTTP 500/);
  });

  test('a backend slower than its timeout closes with 3050 within the timeout', async () => {
    // 3050, not the 3502 of HERALD_CONNECT_TIMEOUT (10 s): the proxy's 300 ms timeout ended the wait.
    const closed = await closeFor(() => hang());
    assert.equal(closed.code, 3050);
    assert.match(logs.lines.find((l) => l.level === 40).problem, /timeout/);
  });

  test('a backend answering HTML closes with 3051 (answer invalid)', async () => {
    const closed = await closeFor(() => raw('<html>maintenance</html>'));
    assert.equal(closed.code, 3051);
    assert.match(logs.lines.find((l) => l.level === 40).problem, /not JSON/);
  });

  test('an answer larger than max_response_size closes with 3051', async () => {
    const closed = await closeFor(() => ({ result: { user: 'x', data: 'y'.repeat(10_000) } }));
    assert.equal(closed.code, 3051);
    assert.match(logs.lines.find((l) => l.level === 40).problem, /larger than 4096 bytes/);
  });

  test('an answer of the wrong shape closes with 3051 naming the field', async () => {
    const closed = await closeFor(() => ({ result: { user: 42 } }));
    assert.equal(closed.code, 3051);
    assert.match(logs.lines.find((l) => l.level === 40).problem, /result\.user/);
  });

  test('the SDK keeps reconnecting through 3050 and connects once the backend is back', async () => {
    let calls = 0;
    backend.on('/connect', () => (++calls < 3 ? status(503) : { result: { user: 'gus' } }));
    const c = newClient(s.wsUrl);
    const connected = new Promise((r) => c.once('connected', r));
    c.connect();
    await connected;
    assert.equal(calls, 3);
    c.disconnect();
  });

  test('the session cookie is never written to the log', async () => {
    await closeFor(() => status(500));
    const raw1 = await RawClient.open(s.wsUrl, { headers: { origin: 'http://app.test', cookie: 'session=topsecret' } });
    raw1.send({ id: 1, connect: {} });
    await raw1.closed(5000);
    raw1.close();
    assert.ok(logs.lines.length >= 2);
    assert.equal(JSON.stringify(logs.lines).includes('topsecret'), false);
  });
});

describe('connect proxy with the backend down', { timeout: 30_000 }, () => {
  test('a refused connection closes the client with 3050 at once', async () => {
    const gone = await Backend.start();
    const url = gone.url('/connect');
    await gone.close();
    const s = await startHerald({
      fileConfig: { client: { proxy: { connect: { enabled: true, endpoint: url, timeout: '2s' } } } },
    });
    try {
      const raw1 = await RawClient.open(s.wsUrl);
      raw1.send({ id: 1, connect: {} });
      const closed = await raw1.closed(5000);
      assert.equal(closed.code, 3050);
      raw1.close();
    } finally {
      await s.close();
    }
  });
});

describe('refresh proxy', { timeout: 30_000 }, () => {
  let backend: Backend;
  let s: TestServer;
  before(async () => {
    backend = await Backend.start();
    s = await startHerald({
      env: { HERALD_ALLOWED_ORIGINS: 'http://app.test' },
      fileConfig: {
        client: {
          proxy: {
            connect: { enabled: true, endpoint: backend.url('/connect') },
            refresh: { enabled: true, endpoint: backend.url('/refresh'), http_headers: ['Cookie'] },
          },
        },
      },
    });
  });
  after(async () => {
    await s.close();
    await backend.close();
  });
  beforeEach(() => {
    backend.requests.length = 0;
  });

  test('at expiry Herald asks the refresh proxy, extends the connection, and the reply told the client no ttl', async () => {
    const soon = () => Math.ceil(Date.now() / 1000) + 1;
    backend.on('/connect', () => ({ result: { user: 'hal', expire_at: soon() } }));
    backend.on('/refresh', () => ({ result: { expire_at: Math.floor(Date.now() / 1000) + 3600 } }));
    const raw1 = await RawClient.open(s.wsUrl, { headers: { origin: 'http://app.test', cookie: 'sid=1' } });
    raw1.send({ id: 1, connect: {} });
    const r = await raw1.reply(1);
    assert.equal(r.connect.expires, undefined);
    assert.equal(r.connect.ttl, undefined);
    await waitFor(() => backend.to('/refresh').length > 0, 'a refresh call', 5000);
    const req = backend.to('/refresh')[0]!;
    assert.equal(req.body.user, 'hal');
    assert.equal(req.body.client, r.connect.client);
    assert.equal(req.headers.cookie, 'sid=1');
    // Still connected after the original expiry: a ping round trip works.
    await new Promise((res) => setTimeout(res, 1200));
    raw1.send({ id: 2, ping: {} });
    assert.ok(await raw1.reply(2));
    assert.equal(raw1.closeCode, undefined);
    raw1.close();
  });

  test('an expired answer closes the connection with 3005 (connection expired)', async () => {
    backend.on('/connect', () => ({ result: { user: 'ida', expire_at: Math.ceil(Date.now() / 1000) + 1 } }));
    backend.on('/refresh', () => ({ result: { expired: true } }));
    const raw1 = await RawClient.open(s.wsUrl);
    raw1.send({ id: 1, connect: {} });
    await raw1.reply(1);
    const closed = await raw1.closed(6000);
    assert.equal(closed.code, 3005);
    raw1.close();
  });

  test('a failing refresh backend keeps the connection (retried a minute later, as Centrifugo does)', async () => {
    backend.on('/connect', () => ({ result: { user: 'jo', expire_at: Math.ceil(Date.now() / 1000) + 1 } }));
    backend.on('/refresh', () => status(500));
    const raw1 = await RawClient.open(s.wsUrl);
    raw1.send({ id: 1, connect: {} });
    await raw1.reply(1);
    await waitFor(() => backend.to('/refresh').length > 0, 'a refresh call', 5000);
    await new Promise((res) => setTimeout(res, 1500));
    raw1.send({ id: 2, ping: {} });
    assert.ok(await raw1.reply(2));
    assert.equal(raw1.closeCode, undefined);
    assert.equal(backend.to('/refresh').length, 1, 'not retried before the minute is up');
    raw1.close();
  });
});

describe('proxy configuration', () => {
  const load = (fileConfig: unknown) => loadConfig({ env: {}, fileConfig });
  const problems = (fileConfig: unknown): string[] => {
    try {
      load(fileConfig);
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems;
    }
  };

  test('Centrifugo v6 keys load: connect, refresh, channel proxies, named proxies, rpc namespaces', () => {
    const c = load({
      client: { proxy: { connect: { enabled: true, endpoint: 'http://a/connect', timeout: '2s' } } },
      channel: {
        proxy: { subscribe: { endpoint: 'http://a/sub' } },
        namespaces: [
          { name: 'ns', subscribe_proxy_enabled: true, publish_proxy_enabled: true, publish_proxy_name: 'p1' },
        ],
      },
      proxies: [{ name: 'p1', endpoint: 'https://b/publish' }],
      rpc: { proxy: { endpoint: 'http://a/rpc' }, without_namespace: { proxy_enabled: true } },
    });
    assert.equal(c.proxy.connect?.timeoutMs, 2000);
    assert.equal(c.proxy.subscribe?.endpoint, 'http://a/sub');
    assert.equal(c.proxy.named.get('p1')?.endpoint, 'https://b/publish');
    assert.equal(c.channel.namespaces.get('ns')?.publish_proxy_name, 'p1');
    assert.equal(c.proxy.rpcWithoutNamespace.proxyEnabled, true);
  });

  test('an unknown proxy name, a missing default, gRPC and turning TLS verification off are refused', () => {
    const p = problems({
      client: {
        proxy: {
          connect: { enabled: true, endpoint: 'grpc://a:9000' },
          refresh: { enabled: true, endpoint: 'https://a/r', http: { tls: { insecure_skip_verify: true } } },
        },
      },
      channel: {
        namespaces: [
          { name: 'ns', subscribe_proxy_enabled: true, publish_proxy_enabled: true, publish_proxy_name: 'nope' },
        ],
      },
    });
    assert.ok(
      p.some((x) => /gRPC proxies are not supported/.test(x)),
      p.join('\n'),
    );
    assert.ok(
      p.some((x) => /insecure_skip_verify: Herald always verifies/.test(x)),
      p.join('\n'),
    );
    assert.ok(
      p.some((x) => /channel.proxy.subscribe is not configured/.test(x)),
      p.join('\n'),
    );
    assert.ok(
      p.some((x) => /no proxy named "nope"/.test(x)),
      p.join('\n'),
    );
  });

  test('a misspelt proxy key is refused with the key meant; Host cannot be forwarded', () => {
    const p = problems({
      client: { proxy: { connect: { enabled: true, endpoint: 'http://a/c', timout: '1s', http_headers: ['Host'] } } },
    });
    assert.ok(
      p.some((x) => /timout: unknown option; did you mean "client.proxy.connect.timeout"/.test(x)),
      p.join('\n'),
    );
    assert.ok(
      p.some((x) => /"Host" frames the HTTP request/.test(x)),
      p.join('\n'),
    );
  });

  test('a CA file that does not exist is a problem naming the path', () => {
    const p = problems({
      client: {
        proxy: {
          connect: {
            enabled: true,
            endpoint: 'https://a/c',
            http: { tls: { enabled: true, server_ca_pem: '/nonexistent/ca.pem' } },
          },
        },
      },
    });
    assert.ok(
      p.some((x) => /CA file \/nonexistent\/ca.pem cannot be read/.test(x)),
      p.join('\n'),
    );
  });
});

describe('connect proxy on a unidirectional transport (uni_sse)', { timeout: 30_000 }, () => {
  let backend: Backend;
  let s: TestServer;
  before(async () => {
    backend = await Backend.start();
    s = await startHerald({
      env: { HERALD_ALLOWED_ORIGINS: 'http://app.test' },
      fileConfig: {
        uni_sse: { enabled: true },
        client: {
          proxy: { connect: { enabled: true, endpoint: backend.url('/connect'), http_headers: ['Cookie'] } },
        },
      },
    });
  });
  after(async () => {
    await s.close();
    await backend.close();
  });

  /** The first SSE message of a uni_sse stream opened with a cookie, parsed. */
  async function firstMessage(): Promise<any> {
    const abort = new AbortController();
    const url = `${s.httpUrl}/connection/uni_sse?cf_connect=${encodeURIComponent('{}')}`;
    const res = await fetch(url, {
      headers: { accept: 'text/event-stream', origin: 'http://app.test', cookie: 'sid=uni' },
      signal: abort.signal,
    });
    assert.equal(res.status, 200);
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body!) {
        buf += decoder.decode(chunk, { stream: true });
        const line = buf.split('\n').find((l) => l.startsWith('data: '));
        if (line && buf.includes('\n\n')) return JSON.parse(line.slice(6));
      }
    } finally {
      abort.abort();
    }
    throw new Error(`the stream ended without a message: ${buf}`);
  }

  test('the backend authenticates a uni_sse stream from its cookie and learns the transport name', async () => {
    backend.on('/connect', (req) => ({ result: { user: req.headers.cookie === 'sid=uni' ? 'uni-user' : '' } }));
    const m = await firstMessage();
    assert.equal(typeof m.connect.client, 'string');
    assert.equal(backend.to('/connect')[0]!.body.transport, 'uni_sse');
  });

  test('a failing backend ends the uni_sse stream with a 3050 disconnect push', async () => {
    backend.on('/connect', () => status(500));
    const m = await firstMessage();
    assert.equal(m.disconnect.code, 3050);
  });
});
