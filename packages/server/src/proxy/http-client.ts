import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { ProxyEndpoint } from '../config/proxy.js';
import { jsonTextDepth } from '../protocol/json-depth.js';

/**
 * Why a call to a proxy backend produced no usable answer. `unavailable`: no connection, a timeout, a non-200 status,
 * too many calls waiting; `invalid`: an answer that is not JSON or too large (the shape is checked by the caller).
 */
export class ProxyCallError extends Error {
  constructor(
    readonly kind: 'unavailable' | 'invalid',
    /** The finer cause, as herald_proxy_requests_total's `outcome` label names it. */
    readonly reason: ProxyFailureReason,
    message: string,
    /** The HTTP status when the backend answered one other than 200. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ProxyCallError';
  }
}

/**
 * `timeout`: no answer within the timeout; `unreachable`: no connection or the answer broke off; `http_status`: a status
 * other than 200; `bad_answer`: not JSON, too large or too deep; `busy`: no free slot (max_in_flight) at once or in time.
 */
export type ProxyFailureReason = 'timeout' | 'unreachable' | 'http_status' | 'bad_answer' | 'busy';

/** Calls waiting for a free slot beyond max_in_flight, per proxy, before new calls fail at once. */
const WAITERS_PER_SLOT = 4;

/**
 * One proxy endpoint's HTTP client: POSTs JSON to the configured URL only, over keep-alive connections (at most
 * `max_in_flight` at once; more calls wait for a slot within their timeout, and past 4x that many waiting they fail
 * at once), each call bounded by `timeout` (waiting included) and its answer by `max_response_size`. TLS is always
 * verified, against the system's roots plus the configured private CA.
 */
export class ProxyHttpClient {
  private readonly agent: HttpAgent;
  private readonly url: URL;
  private readonly https: boolean;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  /** @param maxJsonDepth nesting allowed in an answer (HERALD_MAX_JSON_DEPTH plus the answer's own envelope). */
  constructor(
    readonly config: ProxyEndpoint,
    private readonly maxJsonDepth: number,
  ) {
    this.url = new URL(config.endpoint);
    this.https = this.url.protocol === 'https:';
    const common = {
      keepAlive: true,
      maxSockets: config.maxInFlight,
      maxFreeSockets: config.maxInFlight,
      scheduling: 'lifo' as const,
    };
    this.agent = this.https
      ? new HttpsAgent({
          ...common,
          rejectUnauthorized: true,
          ...(config.ca ? { ca: [...rootCertificates, config.ca] } : {}),
        })
      : new HttpAgent(common);
  }

  /** Calls in flight now (for tests and metrics). */
  get active(): number {
    return this.inFlight;
  }

  /**
   * POSTs `body` as JSON with `headers` (Content-Type is always application/json) and resolves with the parsed JSON
   * answer; rejects with ProxyCallError.
   */
  async call(body: unknown, headers: Record<string, string>): Promise<unknown> {
    const deadline = Date.now() + this.config.timeoutMs;
    await this.acquire(deadline);
    try {
      return await this.post(JSON.stringify(body), headers, deadline);
    } finally {
      this.release();
    }
  }

  close(): void {
    this.agent.destroy();
    for (const w of this.waiting.splice(0)) w();
  }

  private acquire(deadline: number): Promise<void> {
    if (this.inFlight < this.config.maxInFlight) {
      this.inFlight++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.config.maxInFlight * WAITERS_PER_SLOT)
      return Promise.reject(
        new ProxyCallError(
          'unavailable',
          'busy',
          `busy: ${this.inFlight} calls in flight and ${this.waiting.length} waiting (max_in_flight ${this.config.maxInFlight})`,
        ),
      );
    return new Promise<void>((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        this.inFlight++;
        resolve();
      };
      const timer = setTimeout(
        () => {
          const i = this.waiting.indexOf(wake);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(
            new ProxyCallError(
              'unavailable',
              'busy',
              `timed out after ${this.config.timeoutMs} ms waiting for one of ${this.config.maxInFlight} slots (max_in_flight)`,
            ),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
      this.waiting.push(wake);
    });
  }

  private release(): void {
    this.inFlight--;
    const next = this.waiting.shift();
    if (next) next();
  }

  /**
   * One POST. A kept-alive socket the backend closed while idle (its keep-alive timeout, 5 s in Node and Next.js)
   * can fail as it is reused, before the request reached the backend's handler: that failure (ECONNRESET or EPIPE on a
   * reused socket, no answer yet) is retried once on a new connection within the same deadline.
   */
  private post(payload: string, headers: Record<string, string>, deadline: number, retried = false): Promise<unknown> {
    const timeoutMs = this.config.timeoutMs;
    const limit = this.config.maxResponseBytes;
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      const finish = (err: ProxyCallError | undefined, value?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value);
      };
      const send = this.https ? httpsRequest : httpRequest;
      const req = send(this.url, {
        method: 'POST',
        agent: this.agent,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(payload)),
        },
      });
      const timer = setTimeout(
        () => {
          finish(new ProxyCallError('unavailable', 'timeout', `no answer within ${timeoutMs} ms (timeout)`));
          req.destroy();
        },
        Math.max(0, deadline - Date.now()),
      );
      let answered = false;
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (
          !settled &&
          !retried &&
          !answered &&
          req.reusedSocket &&
          (err.code === 'ECONNRESET' || err.code === 'EPIPE') &&
          Date.now() < deadline
        ) {
          settled = true;
          clearTimeout(timer);
          this.post(payload, headers, deadline, true).then(resolve, reject);
          return;
        }
        finish(new ProxyCallError('unavailable', 'unreachable', `request failed: ${err.code ?? err.message}`));
      });
      req.on('response', (res: IncomingMessage) => {
        answered = true;
        if (res.statusCode !== 200) {
          finish(
            new ProxyCallError(
              'unavailable',
              'http_status',
              `answered HTTP ${res.statusCode ?? '?'} (expected 200)`,
              res.statusCode,
            ),
          );
          res.resume();
          return;
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > limit) {
          finish(tooLarge(limit));
          req.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            finish(tooLarge(limit));
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err: NodeJS.ErrnoException) => {
          finish(new ProxyCallError('unavailable', 'unreachable', `answer interrupted: ${err.code ?? err.message}`));
        });
        res.on('end', () => {
          if (settled) return;
          const text = Buffer.concat(chunks).toString('utf8');
          if (jsonTextDepth(text, this.maxJsonDepth) > this.maxJsonDepth) {
            finish(
              new ProxyCallError(
                'invalid',
                'bad_answer',
                `answered JSON nested deeper than ${this.maxJsonDepth} levels`,
              ),
            );
            return;
          }
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch {
            finish(
              new ProxyCallError(
                'invalid',
                'bad_answer',
                `answered ${text.length === 0 ? 'an empty body' : 'a body that is not JSON'} (content-type ${res.headers['content-type'] ?? 'none'})`,
              ),
            );
            return;
          }
          finish(undefined, value);
        });
      });
      req.end(payload);
    });
  }
}

function tooLarge(limit: number): ProxyCallError {
  return new ProxyCallError('invalid', 'bad_answer', `answer larger than ${limit} bytes (max_response_size)`);
}
