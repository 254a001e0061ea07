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

test('map namespaces load with the options Centrifugo v6.8 defines and the defaults it derives', () => {
  const c = loadConfig({
    env: {},
    fileConfig: {
      map_broker: {},
      channel: {
        namespaces: [
          {
            name: 'eph',
            subscription_type: 'map',
            map: { mode: 'ephemeral', key_ttl: '60s', client_key: 'client_id' },
          },
          { name: 'rec', subscription_type: 'map', map: { mode: 'recoverable', key_ttl: '10m', stream_ttl: '30s' } },
          {
            name: 'per',
            subscription_type: 'map',
            map_clients_presence_channel_prefix: 'who:',
            allow_tags_filter: true,
            client_publish_debounce_interval: '50ms',
            map: { mode: 'persistent', allow_publish_for_subscriber: true, min_page_size: 1 },
          },
          { name: 'who', subscription_type: 'map_clients', map: { mode: 'ephemeral', key_ttl: '60s' } },
        ],
      },
    },
  });
  const ns = (n: string) => c.channel.namespaces.get(n)!;
  // Every key above is Herald's now: no "not supported" warning.
  assert.deepEqual(
    c.warnings.filter((w) => /not supported/.test(w)),
    [],
  );
  assert.deepEqual(
    [ns('eph').map?.key_ttl_ms, ns('eph').map?.stream_size, ns('eph').map?.client_key],
    [60_000, 0, 'client_id'],
  );
  // recoverable: stream 100 changes by default, meta outlives the stream tenfold and the keys.
  assert.deepEqual(
    [ns('rec').map?.stream_size, ns('rec').map?.stream_ttl_ms, ns('rec').map?.meta_ttl_ms],
    [100, 30_000, 600_000],
  );
  assert.deepEqual(
    [
      ns('per').map?.key_ttl_ms,
      ns('per').map?.stream_ttl_ms,
      ns('per').map?.min_page_size,
      ns('per').map?.max_page_size,
    ],
    [0, 60_000, 1, 1000],
  );
  assert.equal(ns('per').map?.live_transition_max_publication_limit, 1000);
  assert.equal(ns('per').allow_tags_filter, true);
  assert.equal(ns('per').client_publish_debounce_interval_ms, 50);
  assert.equal(ns('per').map_clients_presence_channel_prefix, 'who:');
  assert.equal(ns('who').subscription_type, 'map_clients');
});

test('map options that Centrifugo would refuse are refused with what to fix', () => {
  const map = (m: unknown, extra: Record<string, unknown> = {}) =>
    problems({
      env: {},
      fileConfig: { channel: { namespaces: [{ name: 'm', subscription_type: 'map', map: m, ...extra }] } },
    });
  assert.match(
    problems({ env: {}, fileConfig: { channel: { namespaces: [{ name: 'm', subscription_type: 'map' }] } } })[0]!,
    /needs map options/,
  );
  assert.match(map({ mode: 'forever' })[0]!, /map\.mode: expected "ephemeral", "recoverable" or "persistent"/);
  assert.match(map({ mode: 'ephemeral' })[0]!, /map\.key_ttl: mode "ephemeral" needs key_ttl/);
  assert.match(map({ mode: 'persistent', key_ttl: '5s' })[0]!, /mode "persistent" keys never expire/);
  assert.match(
    map({ mode: 'ephemeral', key_ttl: '5s', stream_size: 10 })[0]!,
    /map\.stream_size: mode "ephemeral" keeps no stream/,
  );
  assert.match(map({ mode: 'recoverable', key_ttl: '10m', meta_ttl: '1m' })[0]!, /map\.meta_ttl: must be at least/);
  assert.match(
    map({ mode: 'persistent', stream_sise: 5 })[0]!,
    /map\.stream_sise: unknown option; did you mean "map\.stream_size"\?/,
  );
  assert.match(
    map({ mode: 'persistent', publish_proxy_enabled: true })[0]!,
    /map\.publish_proxy_enabled: not supported by Herald/,
  );
  assert.match(map({ mode: 'persistent', client_key: 'ip' })[0]!, /map\.client_key: expected "client_id" or "user_id"/);
  assert.match(
    map({ mode: 'persistent' }, { map_clients_presence_channel_prefix: 'nowhere:' })[0]!,
    /must be in a namespace with subscription_type "map_clients"/,
  );
  assert.match(
    problems({ env: {}, fileConfig: { channel: { namespaces: [{ name: 's', map: { mode: 'persistent' } }] } } })[0]!,
    /map options need subscription_type "map" or "map_clients"/,
  );
  assert.match(
    problems({ env: {}, fileConfig: { channel: { namespaces: [{ name: 's', subscription_type: 'mapp' }] } } })[0]!,
    /subscription_type: expected "stream", "map", "map_clients" or "shared_poll"/,
  );
});

test('shared poll namespaces load with Centrifugo v6.8 names and defaults', () => {
  const c = loadConfig({
    env: {},
    fileConfig: {
      shared_poll: { hmac_secret_key: 'k', concurrency_limit: 8 },
      proxies: [{ name: 'poll_backend', endpoint: 'http://127.0.0.1:3010/refresh' }],
      channel: {
        proxy: { shared_poll_refresh: { endpoint: 'http://127.0.0.1:3011/refresh' } },
        namespaces: [
          { name: 'a', subscription_type: 'shared_poll' },
          {
            name: 'b',
            subscription_type: 'shared_poll',
            shared_poll: {
              proxy_name: 'poll_backend',
              mode: 'versioned',
              refresh_interval: '200ms',
              refresh_batch_size: 50,
            },
          },
        ],
      },
    },
  });
  assert.deepEqual(c.sharedPoll, { secret: 'k', previousSecret: '', previousValidUntil: 0, concurrencyLimit: 8 });
  assert.deepEqual(c.channel.namespaces.get('a')!.shared_poll, {
    proxy_name: '',
    refresh_interval_ms: 10_000,
    refresh_batch_size: 1000,
    max_keys_per_connection: 5000,
    mode: 'versionless',
    channel_shutdown_delay_ms: 1000,
    track_expired_extra_delay_ms: 25_000,
  });
  const b = c.channel.namespaces.get('b')!;
  assert.equal(b.subscription_type, 'shared_poll');
  assert.equal(b.shared_poll!.proxy_name, 'poll_backend');
  assert.equal(b.shared_poll!.mode, 'versioned');
  assert.equal(b.shared_poll!.refresh_interval_ms, 200);
  assert.equal(b.shared_poll!.refresh_batch_size, 50);
});

test('a shared poll namespace without its HMAC key, its proxy or with options Herald lacks is refused, naming the fix', () => {
  const out = problems({
    env: {},
    fileConfig: {
      channel: {
        namespaces: [
          {
            name: 'a',
            subscription_type: 'shared_poll',
            shared_poll: { proxy_name: 'missing', refresh_intervall: '1s' },
          },
          {
            name: 'b',
            subscription_type: 'shared_poll',
            shared_poll: { publish_enabled: true, refresh_interval: '1ms' },
          },
          { name: 'c', shared_poll: {} },
          { name: 'd', subscription_type: 'shared_poll', presence: true, join_leave: true, history_size: 10 },
        ],
      },
    },
  });
  const want = [
    /\("a"\): subscription_type "shared_poll" needs shared_poll.hmac_secret_key/,
    /\("a"\).shared_poll.proxy_name: no proxy named "missing"/,
    /\("a"\).shared_poll.refresh_intervall: unknown option; did you mean "shared_poll.refresh_interval"\?/,
    /\("b"\).shared_poll.publish_enabled: direct publish \(shared_poll_publish\) is not supported/,
    /\("b"\).shared_poll.refresh_interval: at least 50ms/,
    /\("b"\): subscription_type "shared_poll" needs a refresh proxy/,
    /\("c"\).shared_poll: shared poll options need subscription_type "shared_poll"/,
    /\("d"\).presence: shared poll channels have no presence; remove it/,
    /\("d"\).join_leave: shared poll channels have no join leave; remove it/,
    /\("d"\).history_size: shared poll channels keep no history; remove it/,
  ];
  for (const re of want)
    assert.ok(
      out.some((p) => re.test(p)),
      `${re} in:\n${out.join('\n')}`,
    );
});

test('Centrifugo subscription types Herald lacks (map_users) load with a warning', () => {
  const c = loadConfig({
    env: {},
    fileConfig: {
      channel: {
        namespaces: [{ name: 'u', subscription_type: 'map_users', map: { mode: 'ephemeral', key_ttl: '5s' } }],
      },
    },
  });
  assert.equal(c.channel.namespaces.get('u')!.subscription_type, 'stream');
  assert.ok(c.warnings.some((w) => /"map_users" is not supported by Herald; its subscribes get 108/.test(w)));
});
