import { Counter, Gauge, type Registry } from 'prom-client';

/** The webhooks' Prometheus metrics (docs/proxy.md, "Webhooks"), on the Herald instance's registry. */
export interface WebhookMetrics {
  /** Events an endpoint accepted (2xx), by endpoint (origin and path). */
  delivered: Counter<'endpoint'>;
  /** Events given up on, by endpoint and reason: retries_exhausted, queue_full, shutdown. */
  dropped: Counter<'endpoint' | 'reason'>;
  /** POSTs, by endpoint and outcome: ok, http_error, timeout, connection_error. */
  requests: Counter<'endpoint' | 'outcome'>;
  /** Lifecycle state updates on the engine that failed (occupied/vacated and presence bookkeeping). */
  stateErrors: Counter;
  /** Creates every series of an endpoint at 0, so a dashboard sees it before the first event. */
  init(endpoint: string): void;
}

export function webhookMetrics(registry: Registry, queued: () => Map<string, number>): WebhookMetrics {
  const delivered = new Counter({
    name: 'herald_webhook_events_delivered_total',
    help: 'Webhook events accepted by their endpoint (2xx), by endpoint',
    labelNames: ['endpoint'],
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'herald_webhook_events_dropped_total',
    help: 'Webhook events given up on, by endpoint and reason (retries_exhausted, queue_full, shutdown)',
    labelNames: ['endpoint', 'reason'],
    registers: [registry],
  });
  const requests = new Counter({
    name: 'herald_webhook_requests_total',
    help: 'Webhook POSTs, by endpoint and outcome (ok, http_error, timeout, connection_error)',
    labelNames: ['endpoint', 'outcome'],
    registers: [registry],
  });
  const stateErrors = new Counter({
    name: 'herald_webhook_state_errors_total',
    help: 'Failed engine updates of the occupied/vacated and presence state behind webhook events',
    registers: [registry],
  });
  new Gauge({
    name: 'herald_webhook_queue_events',
    help: 'Webhook events waiting to be sent or in flight on this node, by endpoint',
    labelNames: ['endpoint'],
    registers: [registry],
    collect() {
      for (const [endpoint, n] of queued()) this.set({ endpoint }, n);
    },
  });
  return {
    delivered,
    dropped,
    requests,
    stateErrors,
    init(endpoint) {
      delivered.inc({ endpoint }, 0);
      for (const reason of ['retries_exhausted', 'queue_full', 'shutdown']) dropped.inc({ endpoint, reason }, 0);
      for (const outcome of ['ok', 'http_error', 'timeout', 'connection_error']) requests.inc({ endpoint, outcome }, 0);
    },
  };
}
