import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../src/config/index.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('the config loaded');
}

test('HERALD_REDIS_CLUSTER_NODES gives the cluster nodes as host:port or redis URLs', () => {
  const c = loadConfig({
    env: {
      HERALD_ENGINE: 'redis',
      HERALD_REDIS_CLUSTER_NODES: '127.0.0.1:7000, redis://user:pw@10.0.0.2:7001,rediss://[::1]:7002',
    },
  });
  assert.deepEqual(c.redisClusterNodes, ['127.0.0.1:7000', 'redis://user:pw@10.0.0.2:7001', 'rediss://[::1]:7002']);
});

test('without HERALD_REDIS_CLUSTER_NODES the config has no cluster', () => {
  assert.equal(loadConfig({ env: { HERALD_ENGINE: 'redis' } }).redisClusterNodes, undefined);
});

test('a cluster node that is not host:port is refused with a message naming HERALD_REDIS_CLUSTER_NODES', () => {
  const p = problems({ HERALD_ENGINE: 'redis', HERALD_REDIS_CLUSTER_NODES: '127.0.0.1:7000,localhost' });
  assert.deepEqual(p, [
    'HERALD_REDIS_CLUSTER_NODES entry "localhost": not host:port; write host:port or redis[s]://[user:password@]host:port, comma-separated',
  ]);
});

test('a cluster node with a database number or a port out of range is refused', () => {
  const p = problems({ HERALD_ENGINE: 'redis', HERALD_REDIS_CLUSTER_NODES: 'redis://h:7000/2,h:70000' });
  assert.equal(p.length, 2);
  assert.match(p[0]!, /HERALD_REDIS_CLUSTER_NODES entry "redis:\/\/h:7000\/2": a Redis Cluster has only database 0/);
  assert.match(p[1]!, /HERALD_REDIS_CLUSTER_NODES entry "h:70000": port 70000 is out of range/);
});

test('a cluster node given as a Sentinel URL is refused: a cluster has no Sentinel', () => {
  const p = problems({ HERALD_ENGINE: 'redis', HERALD_REDIS_CLUSTER_NODES: 'redis+sentinel://h:26379/mymaster' });
  assert.equal(p.length, 1);
  assert.match(p[0]!, /a Cluster has no Sentinel/);
});

test('HERALD_REDIS_CLUSTER_NODES with a Sentinel REDIS_URL is refused with a message saying why', () => {
  const p = problems({
    HERALD_ENGINE: 'redis',
    HERALD_REDIS_CLUSTER_NODES: '127.0.0.1:7000',
    REDIS_URL: 'redis+sentinel://127.0.0.1:26379/mymaster',
  });
  assert.deepEqual(p, [
    'HERALD_REDIS_CLUSTER_NODES and REDIS_URL are both set: a Redis Cluster is given by its nodes alone (a Cluster has no Sentinel: its replicas fail over by themselves); unset REDIS_URL',
  ]);
});

test('HERALD_REDIS_CLUSTER_NODES with a list of REDIS_URL shards is refused', () => {
  const p = problems({
    HERALD_ENGINE: 'redis',
    HERALD_REDIS_CLUSTER_NODES: '127.0.0.1:7000',
    REDIS_URL: 'redis://127.0.0.1:6380,redis://127.0.0.1:6381',
  });
  assert.equal(p.length, 1);
  assert.match(p[0]!, /both set: .*REDIS_URL shards would split channels a second time\); unset REDIS_URL/);
});

test('HERALD_REDIS_CLUSTER_NODES without HERALD_ENGINE=redis is refused', () => {
  const p = problems({ HERALD_REDIS_CLUSTER_NODES: '127.0.0.1:7000' });
  assert.equal(p.length, 1);
  assert.match(p[0]!, /HERALD_REDIS_CLUSTER_NODES is set but HERALD_ENGINE is not "redis"/);
});
