import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, type LoadConfigInput } from '../src/config/index.js';
import { createHerald, type HeraldOptions } from '../src/herald.js';

/** The problems createHerald refuses `options` with; fails the test when it accepts them. */
function refused(options: HeraldOptions): string[] {
  try {
    const herald = createHerald({ logger: false, env: {}, ...options });
    void herald.close().catch(() => {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('createHerald accepted the options');
}

test('createHerald refuses a config override of the wrong type, naming the key and what is expected', () => {
  const p = refused({ config: { port: '3002' as unknown as number, insecure: 'yes' as unknown as boolean } });
  assert.equal(p.length, 2);
  assert.match(p.join('\n'), /^createHerald\(\{ config \}\): port: .*expected number/m);
  assert.match(p.join('\n'), /^createHerald\(\{ config \}\): insecure: .*expected boolean/m);
});

test('createHerald refuses a misspelt config override with the key meant', () => {
  const p = refused({ config: { maxMesageBytes: 1024 } as unknown as HeraldOptions['config'] });
  assert.deepEqual(p, ['createHerald({ config }): maxMesageBytes: unknown option; did you mean "maxMessageBytes"?']);
});

test('a misspelt namespace option in the overrides is refused with the option meant, like in the file', () => {
  const overrides = {
    channel: { namespaces: { chat: { presense: true } } },
  } as unknown as LoadConfigInput['overrides'];
  assert.throws(
    () => loadConfig({ env: {}, overrides }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems, [
        'createHerald({ config }): channel.namespaces.chat.presense: unknown option; did you mean "channel.namespaces.chat.presence"?',
      ]);
      return true;
    },
  );
});

test('an override below the minimum of its environment variable is refused', () => {
  const p = refused({ config: { maxMessageBytes: 10, channelLimit: 0, engine: 'mongo' as 'memory' } });
  assert.equal(p.length, 3);
  assert.match(p.join('\n'), /maxMessageBytes: .*128/);
  assert.match(p.join('\n'), /channelLimit: .*1/);
  assert.match(p.join('\n'), /engine: /);
});

test('valid overrides still win over the file and the environment', () => {
  const c = loadConfig({
    env: { WS_PORT: '4000', HERALD_MAX_ERRORS: '5' },
    fileConfig: { client: { channel_limit: 10 } },
    overrides: {
      port: 0,
      channelLimit: 3,
      token: { hmacSecret: 's' },
      channel: { namespaces: { chat: { presence: true } } },
    },
  });
  assert.equal(c.port, 0);
  assert.equal(c.channelLimit, 3);
  assert.equal(c.maxErrors, 5);
  assert.equal(c.token.hmacSecret, 's');
  assert.equal(c.channel.namespaces.get('chat')?.presence, true);
});

test('the outbox tuning variables and HOSTNAME are read from the environment the config is given', () => {
  const c = loadConfig({
    env: {
      HERALD_OUTBOX_BATCH_SIZE: '25',
      HERALD_OUTBOX_POLL_MS: '200',
      HERALD_OUTBOX_WORKERS: '2',
      HOSTNAME: 'node-7',
    },
  });
  assert.deepEqual([c.outboxBatchSize, c.outboxPollIntervalMs, c.outboxWorkers, c.name], [25, 200, 2, 'node-7']);
  const d = loadConfig({ env: {} });
  assert.deepEqual(
    [d.outboxBatchSize, d.outboxPollIntervalMs, d.outboxWorkers, d.name],
    [undefined, undefined, undefined, 'herald'],
  );
  assert.throws(
    () => loadConfig({ env: { HERALD_OUTBOX_WORKERS: '0' } }),
    /HERALD_OUTBOX_WORKERS="0": expected a whole number >= 1/,
  );
});
