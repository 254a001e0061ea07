import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Counts of one labelled counter kept as plain numbers on the hot path (a command, a delivery) and handed to
 * prom-client when the registry is read: prom-client hashes the label object on every `inc`, which cost about 2% of
 * the server's CPU per publication in the channels benchmark.
 */
class Tally {
  private readonly counts = new Map<string, number>();
  add(label: string, n: number): void {
    this.counts.set(label, (this.counts.get(label) ?? 0) + n);
  }
  /** Hands what was counted since the last call to `inc`, and starts again from zero. */
  drain(inc: (label: string, n: number) => void): void {
    for (const [label, n] of this.counts) if (n > 0) inc(label, n);
    this.counts.clear();
  }
}

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
  private readonly commandTally = new Tally();
  private readonly errorTally = new Tally();
  private readonly disconnectTally = new Tally();
  private readonly publishedTally = new Tally();
  private deliveredCount = 0;

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
      collect: () => this.commandTally.drain((v, n) => this.commands.inc({ method: v }, n)),
    });
    this.errors = new Counter({
      name: 'herald_errors_total',
      help: 'Error replies sent, by code',
      labelNames: ['code'],
      registers: [r],
      collect: () => this.errorTally.drain((v, n) => this.errors.inc({ code: v }, n)),
    });
    this.disconnects = new Counter({
      name: 'herald_disconnects_total',
      help: 'Connections closed, by close code',
      labelNames: ['code'],
      registers: [r],
      collect: () => this.disconnectTally.drain((v, n) => this.disconnects.inc({ code: v }, n)),
    });
    this.delivered = new Counter({
      name: 'herald_messages_out_total',
      help: 'Publications delivered to client sockets',
      registers: [r],
      collect: () => {
        if (this.deliveredCount > 0) this.delivered.inc(this.deliveredCount);
        this.deliveredCount = 0;
      },
    });
    this.published = new Counter({
      name: 'herald_publications_total',
      help: 'Publications accepted, by source',
      labelNames: ['source'],
      registers: [r],
      collect: () => this.publishedTally.drain((v, n) => this.published.inc({ source: v }, n)),
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

  /** Hot-path counts (plain numbers until the registry is read). */
  countCommand(method: string): void {
    this.commandTally.add(method, 1);
  }
  countError(code: number): void {
    this.errorTally.add(String(code), 1);
  }
  countDisconnect(code: number): void {
    this.disconnectTally.add(String(code), 1);
  }
  countPublished(source: string): void {
    this.publishedTally.add(source, 1);
  }
  countDelivered(n: number): void {
    this.deliveredCount += n;
  }
}
