// A misspelt key anywhere in the config file is refused with the key meant, not silently ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../src/config/index.js';

function problemsOf(fileConfig: unknown): string[] {
  try {
    loadConfig({ fileConfig, env: {} });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('the config was accepted');
}

test('a misspelt client key is refused with the key it most likely means', () => {
  assert.deepEqual(problemsOf({ client: { allowed_orgins: ['http://a.test'] } }), [
    'client.allowed_orgins: unknown option; did you mean "client.allowed_origins"?',
  ]);
});

test('a misspelt key in client.token, http_api, http_stream, sse and channel is refused the same way', () => {
  assert.deepEqual(
    problemsOf({
      client: { token: { hmac_secret_kye: 'x' } },
      http_api: { keys: 'k' },
      http_stream: { enabeld: true },
      sse: { enabled: true, enable: true },
      channel: { namespace: [] },
    }),
    [
      'client.token.hmac_secret_kye: unknown option; did you mean "client.token.hmac_secret_key"?',
      'http_api.keys: unknown option; did you mean "http_api.key"?',
      'http_stream.enabeld: unknown option; did you mean "http_stream.enabled"?',
      'sse.enable: unknown option; did you mean "sse.enabled"?',
      'channel.namespace: unknown option; did you mean "channel.namespaces"?',
    ],
  );
});

test('a misspelt top-level section is refused', () => {
  assert.deepEqual(problemsOf({ chanel: { namespaces: [] } }), ['chanel: unknown option; did you mean "channel"?']);
});

test('a Centrifugo option Herald does not have is a warning, not an error', () => {
  const c = loadConfig({
    fileConfig: { log_level: 'debug', client: { token: { hmac_secret_key: 's' }, history_max_publication_limit: 100 } },
    env: {},
  });
  assert.deepEqual(c.warnings, [
    'log_level: not supported by Herald, ignored',
    'client.history_max_publication_limit: not supported by Herald, ignored',
  ]);
});
