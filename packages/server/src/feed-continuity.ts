import { streamOptions } from './channels/engine-options.js';
import type { ChannelRules } from './channels/rules.js';
import type { Engine } from './engine/engine.js';
import type { Hub } from './hub.js';
import type { Logger } from './logger.js';

export interface FeedContinuity {
  /**
   * The broker's feed was lost and is back: make the channels that moved meanwhile recover (see below). `affects`:
   * only the channels whose feed was lost (one shard's), all when absent.
   */
  afterFeedLoss(affects?: (channel: string) => boolean): Promise<void>;
  /** A channel's stream went back below what this node saw of it (see below). */
  rewound(channel: string, epoch: string, detail: Record<string, number>): Promise<void>;
}

/**
 * What a node does when it can no longer vouch that its subscribers saw a channel's stream without a gap.
 *
 * After the feed was lost and restored, a channel whose stream moved while the node was not listening (or whose
 * position cannot be checked) makes its subscribers recover (unsubscribe 2500). The others are left alone, so a
 * blip does not make every client of the node resubscribe at once. Channels without history have no position to
 * check and nothing to recover from.
 *
 * A stream that went back below what the node saw means the store lost publications (a failover to a replica that
 * lacked them) and reuses their offsets. Positions of the old epoch cannot be vouched for: the epoch is rotated in
 * the store, then the channel's subscribers recover, which tells them `recovered: false`.
 */
/** How long a recheck waits for the feed to deliver publications already in the store. */
const CATCH_UP_MS = 250;
/** How long a recheck waits for the engine to be ready (the feed often comes back before the commands do). */
const READY_WAIT_MS = 10_000;
/** Retries of one channel's position read before its subscribers recover anyway. */
const READ_ATTEMPTS = 3;

export function createFeedContinuity(opts: {
  hub: Hub;
  engine: Engine;
  log: Logger;
  rulesOf: (channel: string) => ChannelRules;
}): FeedContinuity {
  const { hub, engine, log, rulesOf } = opts;

  async function rewound(channel: string, epoch: string, detail: Record<string, number>): Promise<void> {
    log.warn(
      { channel, epoch, ...detail, code: 'stream_rewound' },
      'channel stream went back below what this node saw (the store lost publications, e.g. a failover to a lagging replica): starting a new epoch; its subscribers are told recovered: false',
    );
    for (let attempt = 0; ; attempt++) {
      try {
        await engine.history.rotateEpoch(channel, epoch);
        break;
      } catch (err) {
        if (attempt >= 20) {
          log.error(
            { err, channel, code: 'stream_rewound' },
            'could not start a new epoch for a rewound channel; its subscribers recover from what the store has',
          );
          break;
        }
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 2000)));
      }
    }
    hub.invalidate(channel);
  }

  /**
   * A publication stored before the position read may still be on its way on the feed connection (two connections,
   * no order between them): give the feed a moment to bring the node up to the stored position. A gap it brings
   * instead is caught by the hub's gap detection (the position then has no epoch).
   */
  async function feedCatchesUp(
    channel: string,
    epoch: string,
    offset: number,
  ): Promise<'caught-up' | 'behind' | 'moved-on'> {
    const deadline = Date.now() + CATCH_UP_MS;
    for (;;) {
      const seen = hub.feedPosition(channel);
      // Gone, invalidated by a gap, or on another epoch: the hub already made its subscribers recover.
      if (!seen || seen.epoch !== epoch) return 'moved-on';
      if (seen.offset >= offset) return 'caught-up';
      if (Date.now() >= deadline) return 'behind';
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * The channel's position in the store, retried a little: making subscribers recover against a store that cannot
   * be read yet (still failing over) would let them resubscribe before a rewind is noticed.
   */
  async function storedPosition(channel: string, o: ChannelRules['options']) {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await engine.history.history(channel, { limit: 0, ...streamOptions(o) });
        return r.position;
      } catch (err) {
        if (attempt >= READ_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  }

  async function afterFeedLoss(affects?: (channel: string) => boolean): Promise<void> {
    const readyBy = Date.now() + READY_WAIT_MS;
    while (!engine.isReady() && Date.now() < readyBy) await new Promise((r) => setTimeout(r, 50));
    const channels = [...hub.channelNames()].filter((c) => !affects || affects(c));
    let recovering = 0;
    const invalidate = (channel: string) => {
      hub.invalidate(channel);
      recovering++;
    };
    for (let i = 0; i < channels.length; i += 100) {
      await Promise.all(
        channels.slice(i, i + 100).map(async (channel) => {
          let o: ChannelRules['options'];
          try {
            o = rulesOf(channel).options;
          } catch {
            return invalidate(channel);
          }
          if (o.history_size <= 0 || !hub.feedPosition(channel)) return;
          try {
            const position = await storedPosition(channel, o);
            // Read after the store: publications that reached the feed meanwhile count as seen.
            const seen = hub.feedPosition(channel);
            if (seen && seen.epoch !== '' && seen.epoch === position.epoch && seen.offset > position.offset) {
              recovering++;
              await rewound(channel, seen.epoch, { seenOffset: seen.offset, storeOffset: position.offset });
            } else if (!seen || seen.epoch === '' || seen.epoch !== position.epoch) {
              invalidate(channel);
            } else if (seen.offset < position.offset) {
              const outcome = await feedCatchesUp(channel, seen.epoch, position.offset);
              // Still behind the store: publications were missed while the feed was down.
              if (outcome === 'behind') invalidate(channel);
              else if (outcome === 'moved-on') recovering++;
            }
          } catch {
            invalidate(channel);
          }
        }),
      );
    }
    log.info({ channels: channels.length, recovering }, 'feed recheck done');
  }

  return { afterFeedLoss, rewound };
}
