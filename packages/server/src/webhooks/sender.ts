import { createHmac } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { Logger } from '../logger.js';
import { HERALD_VERSION } from '../version.js';
import type { WebhookEvent } from './events.js';
import type { WebhookMetrics } from './metrics.js';

/** One `webhooks` entry of the config file (config/webhooks.ts reads and checks it). */
export interface WebhookTarget {
  endpoint: string;
  events: readonly string[];
  /** HMAC-SHA256 key of the signature header. */
  secret: string;
  /** One POST's deadline (connect, send, answer). @default 5 s */
  timeoutMs: number;
  /** Events per POST. @default 100 */
  maxBatchSize: number;
  /** How long an event waits for others to share its POST. @default 100 ms */
  flushIntervalMs: number;
  /** Events waiting on this node; past it new events are dropped (reason queue_full). @default 10000 */
  maxQueueSize: number;
  /** A batch is retried with exponential backoff for this long after its first attempt, then dropped. @default 5 min */
  maxRetryDurationMs: number;
  /** `http.tls.server_ca_pem`: PEM text of a private CA trusted for an https endpoint, besides the system's. */
  ca?: string;
}

/** Headers of every POST (docs/proxy.md, "Webhooks"). */
export const SIGNATURE_HEADER = 'x-herald-signature';
export const TIMESTAMP_HEADER = 'x-herald-timestamp';

/** Batches in flight per endpoint at once (each retried on its own). */
const MAX_IN_FLIGHT = 4;
/** First retry delay; doubled per attempt up to MAX_BACKOFF_MS, with ±20% jitter. */
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 30_000;
/** Bytes of an endpoint's answer read (and ignored) before the connection is dropped. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** The signature of a POST: `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<raw body>` with the secret. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The endpoint as it appears in logs and metric labels: origin and path, never credentials or the query. */
export function endpointLabel(endpoint: string): string {
  const u = new URL(endpoint);
  return u.origin + u.pathname;
}

type Outcome = 'ok' | 'http_error' | 'timeout' | 'connection_error';

/**
 * Delivers one webhook's events: queues them (bounded), POSTs them in batches after a short flush interval or as soon
 * as a batch is full, at most MAX_IN_FLIGHT batches at once, each retried with exponential backoff (same body, same
 * event ids, a fresh timestamp and signature) on a non-2xx answer, a timeout or a connection error until
 * `maxRetryDurationMs` has passed, then dropped (counted, one log line per batch). Nothing here waits on the caller:
 * `push` is O(1) and never throws.
 */
export class WebhookSender {
  readonly label: string;
  private readonly url: URL;
  private readonly agent: HttpAgent | HttpsAgent;
  private queue: WebhookEvent[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;
  private readonly sleepers = new Set<() => void>();
  private readonly idleWaiters: (() => void)[] = [];
  /** A queue_full drop was logged; the next one is logged once the queue had room again. */
  private fullLogged = false;

  constructor(
    private readonly target: WebhookTarget,
    private readonly metrics: WebhookMetrics,
    private readonly log: Logger,
  ) {
    this.url = new URL(target.endpoint);
    this.label = endpointLabel(target.endpoint);
    this.agent =
      this.url.protocol === 'https:'
        ? new HttpsAgent({
            keepAlive: true,
            maxSockets: MAX_IN_FLIGHT,
            rejectUnauthorized: true,
            // `ca` replaces the default roots: keep them, and add the private CA.
            ...(target.ca ? { ca: [...rootCertificates, target.ca] } : {}),
          })
        : new HttpAgent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
    metrics.init(this.label);
  }

  /** Events queued or in flight. */
  get pending(): number {
    return this.queue.length + this.inFlight * this.target.maxBatchSize;
  }

  push(event: WebhookEvent): void {
    if (this.closing) {
      this.metrics.dropped.inc({ endpoint: this.label, reason: 'shutdown' });
      return;
    }
    if (this.queue.length >= this.target.maxQueueSize) {
      this.metrics.dropped.inc({ endpoint: this.label, reason: 'queue_full' });
      if (!this.fullLogged) {
        this.fullLogged = true;
        this.log.warn(
          { endpoint: this.label, code: 'webhook_queue_full', maxQueueSize: this.target.maxQueueSize },
          'webhook queue is full: new events are dropped (herald_webhook_events_dropped_total) until the endpoint catches up; check that it answers 2xx quickly, or raise max_queue_size',
        );
      }
      return;
    }
    this.fullLogged = false;
    this.queue.push(event);
    if (this.queue.length >= this.target.maxBatchSize) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.target.flushIntervalMs);
  }

  /** Starts as many batches as the in-flight limit allows. */
  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.target.maxBatchSize);
      this.inFlight++;
      this.deliver(batch)
        .catch((err: unknown) => this.log.error({ err, endpoint: this.label }, 'webhook delivery failed unexpectedly'))
        .finally(() => {
          this.inFlight--;
          if (this.queue.length > 0) {
            if (this.queue.length >= this.target.maxBatchSize || this.closing) this.flush();
            else this.timer ??= setTimeout(() => this.flush(), this.target.flushIntervalMs);
          } else if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
        });
    }
  }

  private async deliver(batch: WebhookEvent[]): Promise<void> {
    const body = JSON.stringify({ events: batch });
    const started = Date.now();
    let lastError = '';
    for (let attempt = 0; ; attempt++) {
      const r = await this.post(body);
      this.metrics.requests.inc({ endpoint: this.label, outcome: r.outcome });
      if (r.outcome === 'ok') {
        this.metrics.delivered.inc({ endpoint: this.label }, batch.length);
        return;
      }
      lastError = r.error;
      const base = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.min(attempt, 16));
      const delay = Math.round(base * (0.8 + Math.random() * 0.4));
      const outOfTime = Date.now() + delay - started > this.target.maxRetryDurationMs;
      if (outOfTime || this.closing) {
        const reason = outOfTime ? 'retries_exhausted' : 'shutdown';
        this.metrics.dropped.inc({ endpoint: this.label, reason }, batch.length);
        this.log.warn(
          {
            endpoint: this.label,
            code: 'webhook_batch_dropped',
            reason,
            events: batch.length,
            attempts: attempt + 1,
            firstEventId: batch[0]?.id,
            lastError,
          },
          outOfTime
            ? `webhook batch dropped after ${attempt + 1} attempts over ${Math.round((Date.now() - started) / 1000)} s (max_retry_duration): the endpoint must answer 2xx within the timeout`
            : 'webhook batch dropped at shutdown: the endpoint did not accept it before Herald stopped',
        );
        return;
      }
      await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  /** One POST; never rejects: every failure is an outcome with its text. */
  private post(body: string): Promise<{ outcome: Outcome; error: string }> {
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': `Herald/${HERALD_VERSION}`,
      [TIMESTAMP_HEADER]: String(timestamp),
      [SIGNATURE_HEADER]: signWebhook(this.target.secret, timestamp, body),
    };
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      let settled = false;
      const finish = (outcome: Outcome, error = '') => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve({ outcome, error });
      };
      const req = send(this.url, { method: 'POST', headers, agent: this.agent }, (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_ANSWER_BYTES) res.destroy();
        });
        res.on('error', () => {});
        res.on('close', () => {
          if (status >= 200 && status < 300) finish('ok');
          else finish('http_error', `answered HTTP ${status}`);
        });
      });
      const deadline = setTimeout(() => {
        finish('timeout', `no answer within ${this.target.timeoutMs} ms`);
        req.destroy();
      }, this.target.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => finish('connection_error', err.code ?? err.message));
      req.end(body);
    });
  }

  /**
   * Stops retrying: sends what is queued once more within `deadlineMs`, counts what is still undelivered then as
   * dropped (reason shutdown) and closes the keep-alive connections.
   */
  async close(deadlineMs: number): Promise<void> {
    this.closing = true;
    this.flush();
    for (const wake of [...this.sleepers]) wake();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadlineMs);
        t.unref();
        this.idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (this.queue.length > 0) {
      this.metrics.dropped.inc({ endpoint: this.label, reason: 'shutdown' }, this.queue.length);
      this.queue = [];
    }
    this.agent.destroy();
  }
}
