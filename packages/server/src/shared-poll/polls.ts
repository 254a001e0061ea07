import type { SharedPollNamespaceOptions } from '../config/namespace.js';
import type { SharedPollConfig } from '../config/shared-poll.js';
import { ErrorCode, HeraldError } from '../protocol/codes.js';
import type { Proxies, SharedPollAnswer } from '../proxy/proxies.js';
import { SharedPollChannel, type SharedPollDeps } from './channel.js';
import { checkSharedPollSignature, type SignatureCheck } from './signature.js';

export interface SharedPollsOptions {
  config: SharedPollConfig | undefined;
  proxies: Proxies | undefined;
  warn(obj: object, msg: string): void;
  /** Timers and clock; real ones by default (tests give fakes). */
  schedule?: SharedPollDeps['schedule'];
  now?: () => number;
}

function realSchedule(ms: number, fn: () => void): () => void {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
}

/**
 * The node's shared poll channels (docs/shared-poll.md): made on the first subscribe, closed channel_shutdown_delay
 * after the last subscriber left. Their backend calls share one limit (shared_poll.concurrency_limit); more wait.
 */
export class SharedPolls {
  private readonly channels = new Map<string, SharedPollChannel>();
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly deps: Omit<SharedPollDeps, 'refresh'>;

  constructor(private readonly opts: SharedPollsOptions) {
    this.deps = {
      schedule: opts.schedule ?? realSchedule,
      now: opts.now ?? Date.now,
      warn: opts.warn,
      closed: (channel) => {
        const ch = this.channels.get(channel);
        if (ch?.closed) this.channels.delete(channel);
      },
    };
  }

  get channelCount(): number {
    return this.channels.size;
  }

  get(channel: string): SharedPollChannel | undefined {
    return this.channels.get(channel);
  }

  /** The channel's state, made when absent. Throws 108 when the refresh proxy or the HMAC key is missing. */
  open(channel: string, o: SharedPollNamespaceOptions): SharedPollChannel {
    const existing = this.channels.get(channel);
    if (existing && !existing.closed) return existing;
    const proxies = this.opts.proxies;
    if (!this.opts.config?.secret || !proxies?.hasSharedPollRefresh(o.proxy_name))
      throw new HeraldError(
        ErrorCode.notAvailable,
        `not available: shared poll channel "${channel}" needs shared_poll.hmac_secret_key and a refresh proxy (docs/shared-poll.md)`,
      );
    const name = o.proxy_name;
    const ch = new SharedPollChannel(channel, o, {
      ...this.deps,
      refresh: (body) => this.limited(() => proxies.sharedPollRefresh(name, body)),
    });
    this.channels.set(channel, ch);
    return ch;
  }

  checkSignature(
    signature: string,
    p: { user: string; channel: string; keys: readonly string[]; nowSec: number },
  ): SignatureCheck {
    const config = this.opts.config;
    if (!config) return { ok: false, why: 'mismatch' };
    return checkSharedPollSignature(config, signature, p);
  }

  close(): void {
    for (const ch of this.channels.values()) ch.close();
    this.channels.clear();
    for (const w of this.waiting.splice(0)) w();
  }

  private async limited(call: () => Promise<SharedPollAnswer>): Promise<SharedPollAnswer> {
    const limit = this.opts.config?.concurrencyLimit ?? 64;
    // A finished call hands its slot to the first waiter, so no new call slips in between.
    if (this.inFlight >= limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.inFlight++;
    try {
      return await call();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.inFlight--;
    }
  }
}
