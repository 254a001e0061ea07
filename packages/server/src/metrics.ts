import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one Herald instance (its own registry, so several instances can live in one process). */
export class Metrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly subscriptions: Gauge;
  readonly channels: Gauge;
  readonly commands: Counter<'method'>;
  readonly errors: Counter<'code'>;
  readonly disconnects: Counter<'code'>;
  readonly delivered: Counter;
  readonly published: Counter<'source'>;
  readonly publishLatency: Histogram;
  readonly apiCalls: Counter<'method' | 'ok'>;

  constructor(sample: () => { connections: number; subscriptions: number; channels: number }, withDefaults = true) {
    const r = this.registry;
    if (withDefaults) collectDefaultMetrics({ register: r, prefix: 'herald_process_' });
    this.connections = new Gauge({
      name: 'herald_connections',
      help: 'Connected clients',
      registers: [r],
      collect() {
        this.set(sample().connections);
      },
    });
    this.subscriptions = new Gauge({
      name: 'herald_subscriptions',
      help: 'Client subscriptions on this node',
      registers: [r],
      collect() {
        this.set(sample().subscriptions);
      },
    });
    this.channels = new Gauge({
      name: 'herald_channels',
      help: 'Channels with subscribers on this node',
      registers: [r],
      collect() {
        this.set(sample().channels);
      },
    });
    this.commands = new Counter({
      name: 'herald_messages_in_total',
      help: 'Client commands received, by method',
      labelNames: ['method'],
      registers: [r],
    });
    this.errors = new Counter({
      name: 'herald_errors_total',
      help: 'Error replies sent, by code',
      labelNames: ['code'],
      registers: [r],
    });
    this.disconnects = new Counter({
      name: 'herald_disconnects_total',
      help: 'Connections closed, by close code',
      labelNames: ['code'],
      registers: [r],
    });
    this.delivered = new Counter({
      name: 'herald_messages_out_total',
      help: 'Publications delivered to client sockets',
      registers: [r],
    });
    this.published = new Counter({
      name: 'herald_publications_total',
      help: 'Publications accepted, by source',
      labelNames: ['source'],
      registers: [r],
    });
    this.publishLatency = new Histogram({
      name: 'herald_publish_duration_seconds',
      help: 'Time to store and fan out one publication',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers: [r],
    });
    this.apiCalls = new Counter({
      name: 'herald_api_calls_total',
      help: 'HTTP API calls, by method and outcome',
      labelNames: ['method', 'ok'],
      registers: [r],
    });
  }
}
