import type { Registry } from 'prom-client';
import { publishOptions } from '../channels/engine-options.js';
import type { Engine } from '../engine/engine.js';
import type { NamespaceOptions } from '../config/namespace.js';
import type { NodeInfo } from '../engine/broker.js';
import type { Logger } from '../logger.js';
import { ADMIN_STATS_CHANNEL } from './connection.js';

/**
 * What each node publishes to `$admin:stats` once a second while the admin UI is enabled (docs/admin.md): the node's
 * row of the nodes table and what happened during the last interval, read from its own Prometheus counters. Every
 * admin UI connected to any node receives every node's snapshot (the engine fans it out like any publication).
 */
export interface AdminStats {
  v: 1;
  node: Omit<NodeInfo, 'channels' | 'updatedAt'>;
  /** ms since epoch when the snapshot was taken. */
  at: number;
  /** Seconds covered by the rates below. */
  interval: number;
  /** Client commands received per second. */
  messages_in: number;
  /** Publications written to client sockets per second. */
  messages_out: number;
  /** Publications accepted per second, by source (api, server, outbox, client). */
  publications: Record<string, number>;
  /** Error replies per second, by code. */
  errors: Record<string, number>;
  /** Connections closed per second, by close code. */
  disconnects: Record<string, number>;
  /** Outbox, webhook and proxy gauges and counters as they stand (herald_outbox_*, herald_webhook_*, herald_proxy_*), summed over labels. */
  integrations: Record<string, number>;
}

/** The metrics the Outbox & webhooks screen lists (outbox, webhooks, proxies), summed over their labels. */
const INTEGRATION_PREFIXES = ['herald_outbox_', 'herald_webhook_', 'herald_proxy_'];

const COUNTERS = {
  in: 'herald_messages_in_total',
  out: 'herald_messages_out_total',
  publications: 'herald_publications_total',
  errors: 'herald_errors_total',
  disconnects: 'herald_disconnects_total',
} as const;

interface Sample {
  at: number;
  byName: Map<string, Map<string, number>>;
}

/** Reads every herald_* metric of the registry: name -> (label value of `by`, or '' ) -> value. */
async function sample(registry: Registry): Promise<Sample> {
  const byName = new Map<string, Map<string, number>>();
  for (const m of await registry.getMetricsAsJSON()) {
    if (!m.name.startsWith('herald_') || m.name.startsWith('herald_process_')) continue;
    const values = new Map<string, number>();
    for (const v of m.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
      // Histograms list buckets, sums and counts: only the count is kept.
      if (v.metricName && !v.metricName.endsWith('_count') && v.metricName !== m.name) continue;
      const key = String(v.labels.source ?? v.labels.code ?? '');
      values.set(key, (values.get(key) ?? 0) + v.value);
    }
    byName.set(m.name, values);
  }
  return { at: Date.now(), byName };
}

function total(s: Sample, name: string): number {
  let t = 0;
  for (const v of s.byName.get(name)?.values() ?? []) t += v;
  return t;
}

function rates(prev: Sample, cur: Sample, name: string, seconds: number): Record<string, number> {
  const out: Record<string, number> = {};
  const before = prev.byName.get(name);
  for (const [k, v] of cur.byName.get(name) ?? []) {
    const d = v - (before?.get(k) ?? 0);
    if (d > 0) out[k] = round(d / seconds);
  }
  return out;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

export interface StatsPublisherOptions {
  registry: Registry;
  engine: Engine;
  namespace: NamespaceOptions;
  nodeInfo(): Omit<NodeInfo, 'channels' | 'updatedAt'>;
  log: Logger;
  intervalMs?: number;
}

/**
 * Publishes a snapshot every interval straight to the engine (not through publish(), so the dashboard's own traffic
 * does not show up as server publications). Returns the function that stops it.
 */
export function startStatsPublisher(opts: StatsPublisherOptions): () => void {
  let prev: Sample | undefined;
  let busy = false;
  let warned = false;
  const po = publishOptions(opts.namespace);
  const once = async (): Promise<void> => {
    const cur = await sample(opts.registry);
    const before = prev;
    prev = cur;
    if (!before) return;
    const seconds = Math.max(0.001, (cur.at - before.at) / 1000);
    const integrations: Record<string, number> = {};
    for (const name of cur.byName.keys())
      if (INTEGRATION_PREFIXES.some((p) => name.startsWith(p))) integrations[name] = total(cur, name);
    const stats: AdminStats = {
      v: 1,
      node: opts.nodeInfo(),
      at: cur.at,
      interval: round(seconds),
      messages_in: round((total(cur, COUNTERS.in) - total(before, COUNTERS.in)) / seconds),
      messages_out: round((total(cur, COUNTERS.out) - total(before, COUNTERS.out)) / seconds),
      publications: rates(before, cur, COUNTERS.publications, seconds),
      errors: rates(before, cur, COUNTERS.errors, seconds),
      disconnects: rates(before, cur, COUNTERS.disconnects, seconds),
      integrations,
    };
    await opts.engine.broker.publish(ADMIN_STATS_CHANNEL, { data: JSON.stringify(stats) }, po);
  };
  const timer = setInterval(() => {
    if (busy || !opts.engine.isReady()) return;
    busy = true;
    once()
      .then(() => (warned = false))
      .catch((err: unknown) => {
        if (!warned) opts.log.warn({ err }, 'admin stats: publishing the snapshot failed; retrying every second');
        warned = true;
      })
      .finally(() => (busy = false));
  }, opts.intervalMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
