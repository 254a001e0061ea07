import type { Broker } from './engine/broker.js';
import type { ClientInfo, Publication, StreamPosition } from './engine/types.js';
import { encodeJoinPush, encodeLeavePush, encodePubPush } from './protocol/codec.js';
import { fossilPublicationData } from './protocol/fossil-delta.js';
import type { SharedFrame } from './transport/connection.js';

/** What the hub needs of a subscribed session. */
export interface HubSubscriber {
  deliver(frame: SharedFrame): void;
  /** The node's feed of this channel skipped publications: the subscriber must recover (unsubscribe push 2500). */
  onInsufficientState(channel: string): void;
}

/** One publication from the feed, with its frames encoded once and shared by every subscriber. */
interface FeedPub {
  channelJson: string;
  pub: Publication;
  /** Place in this node's feed of the channel (channels without history have offset 0). */
  seq: number;
  /** The publication before it on the feed: the base of its fossil delta. */
  prev?: { seq: number; offset: number; data: string };
  frame: SharedFrame;
  fullString?: SharedFrame;
  delta?: SharedFrame;
}

/** A subscriber that negotiated fossil delta, and the publication its SDK holds as the delta base. */
interface DeltaState {
  /** The namespace has delta_publish: send patches; otherwise full payloads as JSON strings. */
  publish: boolean;
  baseSeq: number;
  baseOffset: number;
}

interface ChannelState {
  json: string;
  live: Set<HubSubscriber>;
  /** Subscribers between registration and their subscribe reply: pushes wait here (the SDK drops early pushes). */
  pending: Map<HubSubscriber, FeedPub[]>;
  joinLeave: Set<HubSubscriber>;
  delta: Map<HubSubscriber, DeltaState>;
  seq: number;
  /** The last publication on the feed, for the next one's delta. */
  prev?: { seq: number; offset: number; data: string };
  /** Resolves when the broker feeds this node the channel. */
  ready: Promise<void>;
  /** Last offset and epoch seen on the feed or in a subscribe reply, for gap detection. */
  epoch: string;
  lastOffset: number;
  /**
   * The highest offset the feed itself delivered, and its epoch. Kept across invalidations: the feed never goes
   * back within an epoch unless the store did.
   */
  feedEpoch: string;
  feedHigh: number;
  /** The store went back (rewind): nothing is delivered until the epoch is rotated and subscribers recover. */
  suspended: boolean;
}

/**
 * Told that a channel's stream went back below what this node received from it (a failover to a replica that
 * lacked the last publications). It must rotate the stream's epoch and then call `invalidate(channel)`.
 */
export type RewindHandler = (channel: string, epoch: string, seenOffset: number, feedOffset: number) => void;

/**
 * The node's local subscriptions: channel -> subscribers, fed by the broker. A publication is encoded once per
 * channel into a SharedFrame that every subscriber's transport writes as is.
 */
export class Hub {
  private readonly channels = new Map<string, ChannelState>();
  private subscriptionCount = 0;

  constructor(
    private readonly broker: Broker,
    private readonly onBrokerError: (err: unknown, channel: string) => void,
    private readonly onRewind: RewindHandler = () => {},
  ) {}

  get numChannels(): number {
    return this.channels.size;
  }

  get numSubscriptions(): number {
    return this.subscriptionCount;
  }

  channelNames(): IterableIterator<string> {
    return this.channels.keys();
  }

  subscriberCount(channel: string): number {
    const st = this.channels.get(channel);
    return st ? st.live.size + st.pending.size : 0;
  }

  /**
   * Registers a subscriber in pending mode and resolves once the broker feeds the channel, so a history read
   * made after this cannot miss a publication: it is either in history or buffered here.
   */
  async add(channel: string, sub: HubSubscriber, joinLeave: boolean, delta?: { publish: boolean }): Promise<void> {
    let st = this.channels.get(channel);
    if (!st) {
      st = {
        json: JSON.stringify(channel),
        live: new Set(),
        pending: new Map(),
        joinLeave: new Set(),
        delta: new Map(),
        seq: 0,
        ready: Promise.resolve(),
        epoch: '',
        lastOffset: 0,
        feedEpoch: '',
        feedHigh: 0,
        suspended: false,
      };
      this.channels.set(channel, st);
      const state = st;
      st.ready = this.broker.subscribe(channel).catch((err) => {
        if (this.channels.get(channel) === state) this.channels.delete(channel);
        throw err;
      });
    }
    st.pending.set(sub, []);
    if (joinLeave) st.joinLeave.add(sub);
    if (delta) st.delta.set(sub, { publish: delta.publish, baseSeq: -1, baseOffset: -1 });
    this.subscriptionCount++;
    try {
      await st.ready;
    } catch (err) {
      st.pending.delete(sub);
      st.joinLeave.delete(sub);
      st.delta.delete(sub);
      this.subscriptionCount--;
      throw err;
    }
  }

  /**
   * Ends the pending phase: buffered publications newer than `position.offset` are delivered in order (older
   * ones were in the subscribe reply), then the subscriber is live. Records the position for gap detection.
   * `deltaBase`: the last publication of the reply, which a fossil-delta subscriber now holds as its base.
   */
  activate(channel: string, sub: HubSubscriber, position: StreamPosition | undefined, deltaBase?: Publication): void {
    const st = this.channels.get(channel);
    if (!st) return;
    const buffered = st.pending.get(sub);
    if (buffered === undefined) return;
    st.pending.delete(sub);
    if (position && position.epoch !== '') {
      if (st.epoch === '' || st.epoch === position.epoch) {
        if (st.epoch === '' || position.offset > st.lastOffset) st.lastOffset = Math.max(st.lastOffset, position.offset);
        st.epoch = position.epoch;
      }
    }
    const d = st.delta.get(sub);
    if (d && deltaBase && deltaBase.offset > 0) {
      d.baseOffset = deltaBase.offset;
      // The feed's last publication is that one (or none came yet): it can be the base of the next one's delta.
      if (!st.prev && st.lastOffset === deltaBase.offset) st.prev = { seq: st.seq, offset: deltaBase.offset, data: deltaBase.data };
    }
    const after = position?.offset ?? 0;
    for (const b of buffered) {
      if (b.pub.offset === 0 || b.pub.offset > after) this.deliverTo(sub, b, d);
    }
    st.live.add(sub);
  }

  remove(channel: string, sub: HubSubscriber): void {
    const st = this.channels.get(channel);
    if (!st) return;
    const had = st.live.delete(sub) || st.pending.delete(sub);
    st.joinLeave.delete(sub);
    st.delta.delete(sub);
    if (had) this.subscriptionCount--;
    if (st.live.size === 0 && st.pending.size === 0) {
      this.channels.delete(channel);
      this.broker.unsubscribe(channel).catch((err) => this.onBrokerError(err, channel));
    }
  }

  /** Number of deliveries made (for metrics). */
  onPublication(channel: string, pub: Publication, position: StreamPosition): number {
    const st = this.channels.get(channel);
    if (!st || st.suspended) return 0;
    if (pub.offset > 0 && position.epoch !== '') {
      if (position.epoch === st.feedEpoch && pub.offset <= st.feedHigh) {
        // The store hands out an offset the feed already delivered: it lost publications and reuses positions.
        st.suspended = true;
        this.onRewind(channel, st.feedEpoch, st.lastOffset, st.feedHigh);
        return 0;
      }
      st.feedEpoch = position.epoch;
      st.feedHigh = pub.offset;
      // Already in a subscribe reply.
      if (st.epoch !== '' && position.epoch === st.epoch && pub.offset <= st.lastOffset) return 0;
      const gap = st.epoch !== '' && (position.epoch !== st.epoch || pub.offset > st.lastOffset + 1);
      st.epoch = position.epoch;
      st.lastOffset = pub.offset;
      if (gap) {
        this.invalidate(channel);
        return 0;
      }
    }
    const entry: FeedPub = { channelJson: st.json, pub, seq: ++st.seq, prev: st.prev, frame: { text: encodePubPush(st.json, pub) } };
    st.prev = st.delta.size > 0 ? { seq: entry.seq, offset: pub.offset, data: pub.data } : undefined;
    if (st.delta.size === 0) for (const sub of st.live) sub.deliver(entry.frame);
    else for (const sub of st.live) this.deliverTo(sub, entry, st.delta.get(sub));
    for (const buf of st.pending.values()) buf.push(entry);
    return st.live.size;
  }

  /**
   * A fossil-delta subscriber gets a patch only when the publication before this one is the base its SDK holds
   * (it received it here or in its subscribe reply); otherwise the full payload as a JSON string, which becomes its
   * new base. Frames are built once per publication and shared.
   */
  private deliverTo(sub: HubSubscriber, e: FeedPub, d: DeltaState | undefined): void {
    if (!d) {
      sub.deliver(e.frame);
      return;
    }
    const prev = e.prev;
    const holdsPrev = prev !== undefined && (prev.offset > 0
      ? d.baseOffset === prev.offset && e.pub.offset === prev.offset + 1
      : d.baseSeq === prev.seq);
    if (d.publish && holdsPrev) {
      e.delta ??= { text: encodePubPush(e.channelJson, e.pub, fossilPublicationData(prev!.data, e.pub.data)) };
      sub.deliver(e.delta);
    } else {
      e.fullString ??= { text: encodePubPush(e.channelJson, e.pub, fossilPublicationData(undefined, e.pub.data)) };
      sub.deliver(e.fullString);
    }
    d.baseSeq = e.seq;
    d.baseOffset = e.pub.offset > 0 ? e.pub.offset : -1;
  }

  onJoin(channel: string, info: ClientInfo): void {
    const st = this.channels.get(channel);
    if (!st || st.joinLeave.size === 0) return;
    const frame: SharedFrame = { text: encodeJoinPush(st.json, info) };
    for (const sub of st.joinLeave) if (st.live.has(sub)) sub.deliver(frame);
  }

  onLeave(channel: string, info: ClientInfo): void {
    const st = this.channels.get(channel);
    if (!st || st.joinLeave.size === 0) return;
    const frame: SharedFrame = { text: encodeLeavePush(st.json, info) };
    for (const sub of st.joinLeave) if (st.live.has(sub)) sub.deliver(frame);
  }

  /** The last position this node saw on the channel's feed (epoch '' when it has none to vouch for). */
  feedPosition(channel: string): StreamPosition | undefined {
    const st = this.channels.get(channel);
    return st ? { epoch: st.epoch, offset: st.lastOffset } : undefined;
  }

  /** Every subscriber of the channel must recover: the node cannot vouch for continuity any more. */
  invalidate(channel: string): void {
    const st = this.channels.get(channel);
    if (!st) return;
    st.epoch = '';
    st.lastOffset = 0;
    st.suspended = false;
    st.prev = undefined;
    for (const sub of [...st.live, ...st.pending.keys()]) sub.onInsufficientState(channel);
  }
}
