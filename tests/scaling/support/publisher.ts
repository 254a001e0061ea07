import type { Ack } from './checker.js';
import type { HeraldNode } from './nodes.js';

export interface PublisherStats {
  acks: Ack[];
  /** Answers that were a temporary failure (HTTP 503, code 100): refused, not stored. */
  refused: number;
  /** Requests that got no answer in time (the publication may or may not have been stored). */
  unanswered: number;
  /** Any other answer: a bug. */
  other: string[];
}

/**
 * Publishes `{id}` to `channels` in turn through the HTTP API of the node `pick` returns, one at a time, until
 * `stop()`; records what was acknowledged. Bounded by `maxCount`.
 */
export function startPublisher(name: string, channels: string[], pick: () => HeraldNode | undefined, opts: { intervalMs?: number; maxCount?: number } = {}) {
  const stats: PublisherStats = { acks: [], refused: 0, unanswered: 0, other: [] };
  let running = true;
  let n = 0;
  const done = (async () => {
    while (running && n < (opts.maxCount ?? 20_000)) {
      const node = pick();
      const channel = channels[n % channels.length]!;
      const id = `${name}-${n++}`;
      if (node) {
        try {
          const r = await node.api('publish', { channel, data: { id } }, 3000);
          if (r.status === 200 && r.result && !r.error) stats.acks.push({ channel, id, epoch: r.result.epoch, offset: r.result.offset });
          else if (r.status === 503 && r.error?.code === 100 && r.error.temporary) stats.refused++;
          else stats.other.push(`${r.status} ${JSON.stringify(r.error)}`);
        } catch {
          stats.unanswered++;
        }
      }
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 10));
    }
  })();
  return {
    stats,
    async stop(): Promise<PublisherStats> {
      running = false;
      await done;
      return stats;
    },
  };
}
