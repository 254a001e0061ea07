import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ProxyFailureReason } from './http-client.js';

/** What one proxy call came to, as herald_proxy_requests_total's `outcome` label names it (docs/proxy.md, "Metrics"). */
export type ProxyOutcome = 'ok' | 'error' | 'disconnect' | ProxyFailureReason;

export type ProxyKind = 'connect' | 'refresh' | 'subscribe' | 'publish' | 'sub_refresh' | 'rpc' | 'shared_poll_refresh';

/** The proxies' Prometheus metrics, on the Herald instance's registry, labelled by proxy name and kind. */
export interface ProxyMetrics {
  /** Counts a call as started (in flight) and returns the function that records its outcome and duration. */
  start(proxy: string, kind: ProxyKind): (outcome: ProxyOutcome) => void;
}

export function proxyMetrics(registry: Registry): ProxyMetrics {
  const requests = new Counter({
    name: 'herald_proxy_requests_total',
    help: 'Proxy calls, by proxy name, kind and outcome (ok, error, disconnect, timeout, unreachable, http_status, bad_answer, busy)',
    labelNames: ['proxy', 'kind', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'herald_proxy_request_duration_seconds',
    help: 'Time from a proxy call to its outcome (waiting for a max_in_flight slot included), by proxy name and kind',
    labelNames: ['proxy', 'kind'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: 'herald_proxy_requests_in_flight',
    help: 'Proxy calls started and not yet answered (waiting for a slot included), by proxy name and kind',
    labelNames: ['proxy', 'kind'],
    registers: [registry],
  });
  return {
    start(proxy, kind) {
      const labels = { proxy, kind };
      inFlight.inc(labels);
      const stop = duration.startTimer(labels);
      let done = false;
      return (outcome) => {
        if (done) return;
        done = true;
        inFlight.dec(labels);
        stop();
        requests.inc({ proxy, kind, outcome });
      };
    },
  };
}
