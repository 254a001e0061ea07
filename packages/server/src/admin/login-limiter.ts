/**
 * Failed login attempts per client IP: a bucket of `burst` failures refilled at one per `refillMs` (5 a minute). Once
 * it is empty, every attempt is answered 429 without the password being checked; a successful login costs nothing.
 */
export class LoginLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly burst = 5,
    private readonly refillMs = 12_000,
  ) {}

  /** The seconds `ip` must wait before its next attempt (0: it may try now). */
  wait(ip: string, now = Date.now()): number {
    const b = this.bucket(ip, now);
    return b.tokens < 1 ? Math.ceil(((1 - b.tokens) * this.refillMs) / 1000) : 0;
  }

  /** Counts one failed attempt of `ip`. */
  failed(ip: string, now = Date.now()): void {
    const b = this.bucket(ip, now);
    b.tokens = Math.max(0, b.tokens - 1);
  }

  private bucket(ip: string, now: number): { tokens: number; at: number } {
    let b = this.buckets.get(ip);
    if (!b) {
      if (this.buckets.size > 10_000) this.buckets.clear();
      b = { tokens: this.burst, at: now };
      this.buckets.set(ip, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / this.refillMs);
    b.at = now;
    return b;
  }
}
