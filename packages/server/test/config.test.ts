import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { parseDurationMs } from '../src/config/duration.js';

test('defaults give port 3002, both WebSocket paths and the memory engine', () => {
  const c = loadConfig({ env: {} });
  assert.equal(c.port, 3002);
  assert.deepEqual(c.wsPaths, ['/ws', '/connection/websocket']);
  assert.equal(c.engine, 'memory');
  assert.equal(c.token.requireExp, true);
});

test('Centrifugo v6 keys in the file are read, and env vars win over the file', () => {
  const fileConfig = {
    client: { token: { hmac_secret_key: 'from-file' }, allowed_origins: ['http://a.test'], insecure: false },
    http_api: { key: 'file-key' },
    channel: {
      without_namespace: { presence: true },
      namespaces: [
        { name: 'chat', history_size: 50, history_ttl: '5m', force_recovery: true, allow_subscribe_for_client: true },
      ],
    },
  };
  const c = loadConfig({ env: { HERALD_API_KEY: 'env-key' }, fileConfig });
  assert.equal(c.token.hmacSecret, 'from-file');
  assert.equal(c.apiKey, 'env-key');
  assert.deepEqual(c.allowedOrigins, ['http://a.test']);
  assert.equal(c.channel.withoutNamespace.presence, true);
  const chat = c.channel.namespaces.get('chat')!;
  assert.equal(chat.history_size, 50);
  assert.equal(chat.history_ttl_ms, 300_000);
  assert.equal(chat.force_recovery, true);
});

test('HERALD_TOKEN_SECRET falls back to NEXTAUTH_SECRET', () => {
  assert.equal(loadConfig({ env: { NEXTAUTH_SECRET: 'na' } }).token.hmacSecret, 'na');
  assert.equal(loadConfig({ env: { NEXTAUTH_SECRET: 'na', HERALD_TOKEN_SECRET: 'h' } }).token.hmacSecret, 'h');
});

test('insecure mode relaxes exp unless HERALD_TOKEN_REQUIRE_EXP says otherwise', () => {
  assert.equal(loadConfig({ env: { HERALD_CLIENT_INSECURE: 'true' } }).token.requireExp, false);
  assert.equal(
    loadConfig({ env: { HERALD_CLIENT_INSECURE: 'true', HERALD_TOKEN_REQUIRE_EXP: 'true' } }).token.requireExp,
    true,
  );
});

function problems(input: Parameters<typeof loadConfig>[0]): string[] {
  try {
    loadConfig(input);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

test('a misspelt namespace option is named with a suggestion', () => {
  const p = problems({ env: {}, fileConfig: { channel: { namespaces: [{ name: 'chat', presense: true }] } } });
  assert.match(p[0]!, /channel\.namespaces\[0\] \("chat"\)\.presense: unknown option; did you mean "presence"\?/);
});

test('wrong types name the key and what is expected', () => {
  const p = problems({ env: {}, fileConfig: { channel: { without_namespace: { history_size: 'ten' } } } });
  assert.match(p[0]!, /channel\.without_namespace\.history_size/);
  const p2 = problems({ env: { WS_PORT: 'abc', HERALD_ENGINE: 'mongo', HERALD_PING_INTERVAL: 'soon' } });
  assert.equal(p2.length, 3);
  assert.match(p2.join('\n'), /WS_PORT="abc": expected a whole number/);
  assert.match(p2.join('\n'), /HERALD_ENGINE="mongo": expected "memory" or "redis"/);
  assert.match(p2.join('\n'), /HERALD_PING_INTERVAL="soon"/);
});

test('history without a TTL and recovery without history are refused', () => {
  const p = problems({
    env: {},
    fileConfig: {
      channel: {
        namespaces: [
          { name: 'a', history_size: 5 },
          { name: 'b', force_recovery: true },
        ],
      },
    },
  });
  assert.match(p.join('\n'), /history_ttl is not set/);
  assert.match(p.join('\n'), /recovery needs history/);
});

test('an origin with a path or no scheme is refused', () => {
  const p = problems({ env: { HERALD_ALLOWED_ORIGINS: 'localhost:3000,http://ok.test/path' } });
  assert.equal(p.length, 2);
});

test('unsupported Centrifugo keys are warned about, not fatal', () => {
  const c = loadConfig({
    env: {},
    fileConfig: { channel: { without_namespace: { subscribe_stream_proxy_enabled: true } } },
  });
  assert.match(c.warnings.join('\n'), /subscribe_stream_proxy_enabled: not supported by Herald, ignored/);
});

test('__proto__ in the config file pollutes nothing', () => {
  const fileConfig = JSON.parse(
    '{"__proto__":{"polluted":1},"channel":{"without_namespace":{"__proto__":{"presence":true}}}}',
  );
  const c = loadConfig({ env: {}, fileConfig });
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(c.channel.withoutNamespace.presence, false);
});

test('durations read like Centrifugo writes them', () => {
  assert.equal(parseDurationMs('300s'), 300_000);
  assert.equal(parseDurationMs('1m30s'), 90_000);
  assert.equal(parseDurationMs('500ms'), 500);
  assert.equal(parseDurationMs('2h'), 7_200_000);
  assert.equal(parseDurationMs(10), 10_000);
  assert.equal(parseDurationMs('10'), 10_000);
  assert.equal(parseDurationMs('ten'), undefined);
  assert.equal(parseDurationMs('-5s'), undefined);
});
