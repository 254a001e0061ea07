import type { Ack } from './checker.js';
import type { HeraldNode } from './nodes.js';

export interface PublisherStats {
  acks: Ack[];
  /** Answers that were a temporary failure (HTTP 503, code 100, temporary): refused, not acknowledged. */
  refused: number;
  /** Each refusal: Date.now() of its answer, the channel and the node; in order. */
  refusals: { at: number; channel: string; node: string }[];
  /**
   * Requests that got no answer at all (connection dropped, or nothing within the request timeout): the
   * publication may or may not have been stored. A publisher has one request in flight at a time.
   */
  unanswered: number;
  /** Date.now() when each unanswered request was sent, and the node it went to. */
  unansweredAt: { sentAt: number; node: string }[];
  /** Any other answer: a bug. */
  other: string[];
}

/**
 * Publishes `{id}` to `channels` in turn through the HTTP API of the node `pick` returns, one at a time, until
 * `stop()`; records what was acknowledged, refused and unanswered. Bounded by `maxCount`. A request gets
 * `timeoutMs` (3 s: more than the nodes' HERALD_REDIS_TIMEOUT of 1 s, so a node that is up always answers first).
 */
export function startPublisher(
  name: string,
  channels: string[],
  pick: () => HeraldNode | undefined,
  opts: { intervalMs?: number; maxCount?: number; timeoutMs?: number } = {},
) {
  const stats: PublisherStats = { acks: [], refused: 0, refusals: [], unanswered: 0, unansweredAt: [], other: [] };
  let running = true;
  let n = 0;
  const done = (async () => {
    while (running && n < (opts.maxCount ?? 20_000)) {
      const node = pick();
      const channel = channels[n % channels.length]!;
      const id = `${name}-${n++}`;
      if (node) {
        const sentAt = Date.now();
        try {
          const r = await node.api('publish', { channel, data: { id } }, opts.timeoutMs ?? 3000);
          const at = Date.now();
          if (r.status === 200 && r.result && !r.error)
            stats.acks.push({ channel, id, epoch: r.result.epoch, offset: r.result.offset, sentAt, at });
          else if (r.status === 503 && r.error?.code === 100 && r.error.temporary) {
            stats.refused++;
            stats.refusals.push({ at, channel, node: node.name });
          } else stats.other.push(`${r.status} ${JSON.stringify(r.error)}`);
        } catch {
          stats.unanswered++;
          stats.unansweredAt.push({ sentAt, node: node.name });
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

/** The stats of several publishers as one. */
export function combined(all: PublisherStats[]): PublisherStats {
  return {
    acks: all.flatMap((s) => s.acks),
    refused: all.reduce((n, s) => n + s.refused, 0),
    refusals: all.flatMap((s) => s.refusals).sort((a, b) => a.at - b.at),
    unanswered: all.reduce((n, s) => n + s.unanswered, 0),
    unansweredAt: all.flatMap((s) => s.unansweredAt),
    other: all.flatMap((s) => s.other),
  };
}
