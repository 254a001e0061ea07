/**
 * Open connections per client IP, shared by every transport of a node (WebSocket, HTTP streaming, SSE), so the
 * per-IP limit (HERALD_IP_CONNECTION_LIMIT) cannot be doubled by mixing transports. 0 = no limit.
 */
export class IpConnections {
  private readonly counts = new Map<string, number>();

  constructor(readonly limit: number) {}

  /** True when `ip` may not open another connection. */
  full(ip: string): boolean {
    return this.limit > 0 && (this.counts.get(ip) ?? 0) >= this.limit;
  }

  /** Counts a connection of `ip`; `release(ip)` gives it back. */
  add(ip: string): void {
    this.counts.set(ip, (this.counts.get(ip) ?? 0) + 1);
  }

  /** Counts a connection of `ip`; returns its release function (idempotent). */
  acquire(ip: string): () => void {
    this.add(ip);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release(ip);
    };
  }

  /** Gives back one connection of `ip` (the caller releases each connection once; see acquire for a guarded one). */
  release(ip: string): void {
    const n = (this.counts.get(ip) ?? 1) - 1;
    if (n <= 0) this.counts.delete(ip);
    else this.counts.set(ip, n);
  }

  /** The refusal message, naming the variable to change. */
  message(ip: string): string {
    return `too many connections from ${ip} (HERALD_IP_CONNECTION_LIMIT=${this.limit})`;
  }
}
