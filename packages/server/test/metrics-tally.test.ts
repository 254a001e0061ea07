// Metrics (src/metrics.ts): hot-path counts are plain numbers handed to prom-client when the registry is read; every
// read shows the running total, never a count twice or lost between reads.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../src/metrics.js';

function newMetrics(): Metrics {
  return new Metrics(() => ({ connections: 0, subscriptions: 0, channels: 0 }), false);
}

async function valueOf(m: Metrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (metric?.values as { labels: Record<string, string>; value: number }[] | undefined)?.find((x) =>
    Object.entries(labels).every(([k, val]) => String(x.labels[k]) === val),
  );
  return v?.value;
}

describe('hot-path counters', () => {
  it('show running totals across reads of the registry, by label', async () => {
    const m = newMetrics();
    m.countCommand('publish');
    m.countCommand('publish');
    m.countCommand('subscribe');
    m.countDelivered(1000);
    m.countPublished('client');
    assert.equal(await valueOf(m, 'herald_messages_in_total', { method: 'publish' }), 2);
    assert.equal(await valueOf(m, 'herald_messages_in_total', { method: 'subscribe' }), 1);
    assert.equal(await valueOf(m, 'herald_messages_out_total'), 1000);
    // A second read with nothing new counted changes nothing.
    assert.equal(await valueOf(m, 'herald_messages_in_total', { method: 'publish' }), 2);
    m.countCommand('publish');
    m.countDelivered(5);
    m.countDisconnect(3008);
    m.countError(103);
    m.countPublished('api');
    assert.equal(await valueOf(m, 'herald_messages_in_total', { method: 'publish' }), 3);
    assert.equal(await valueOf(m, 'herald_messages_out_total'), 1005);
    assert.equal(await valueOf(m, 'herald_disconnects_total', { code: '3008' }), 1);
    assert.equal(await valueOf(m, 'herald_errors_total', { code: '103' }), 1);
    assert.equal(await valueOf(m, 'herald_publications_total', { source: 'client' }), 1);
    assert.equal(await valueOf(m, 'herald_publications_total', { source: 'api' }), 1);
  });

  it('reach the Prometheus text exposition', async () => {
    const m = newMetrics();
    for (let i = 0; i < 7; i++) m.countCommand('ping');
    const text = await m.registry.metrics();
    assert.match(text, /^herald_messages_in_total\{method="ping"\} 7$/m);
  });
});
