import type { Broker } from './engine/broker.js';
import type { ClientInfo, Publication, StreamPosition } from './engine/types.js';
import { encodeJoinPush, encodeLeavePush, encodePubPush } from './protocol/replies.js';
import { protobufPubPush } from './protocol/protobuf/replies.js';
import { fossilPublicationData } from './protocol/fossil-delta.js';
import type { SharedFrame } from './transport/connection.js';
import { matchesTags, type TagsFilter } from './protocol/tags-filter.js';

/**
 * A publication push shared by every subscriber, built lazily once per encoding: JSON text when the first JSON socket
 * writes it, protobuf straight from the publication when the first protobuf socket does. `fossil` is the delta
 * payload of fossil-delta subscribers (fossilPublicationData: JSON-quoted, which protobuf sends unquoted).
 */
class PubFrame implements SharedFrame {
  private json: string | undefined;
  bytes?: Buffer;
  protobufBytes?: Buffer;
  constructor(
    private readonly channel: string,
    private readonly channelJson: string,
    private readonly pub: Publication,
    private readonly fossilData?: { data: string; delta: boolean },
  ) {}
  get text(): string {
    return (this.json ??= encodePubPush(this.channelJson, this.pub, this.fossilData));
  }
  get fossil(): boolean {
    return this.fossilData !== undefined;
  }
  protobuf(): Buffer {
    const f = this.fossilData;
    return protobufPubPush(
      this.channel,
      this.pub,
      f ? { data: JSON.parse(f.data) as string, delta: f.delta } : undefined,
    );
  }
}

function lazyPubFrame(
  channel: string,
  channelJson: string,
  pub: Publication,
  fossil?: { data: string; delta: boolean },
): SharedFrame {
  return new PubFrame(channel, channelJson, pub, fossil);
}

/** What the hub needs of a subscribed session. */
export interface HubSubscriber {
  deliver(frame: SharedFrame): void;
  /** The node's feed of this channel skipped publications: the subscriber must recover (unsubscribe push 2500). */
  onInsufficientState(channel: string): void;
}

/** One publication from the feed, with its frames encoded once and shared by every subscriber. */
interface FeedPub {
  channel: string;
  channelJson: string;
  pub: Publication;
  /** Place in this node's feed of the channel (channels without history have offset 0). */
  seq: number;
  /** The stream epoch the feed carried it with ('' for channels without history). */
  epoch: string;
  /** The publication before it on the feed (map channels: before it for its key): the base of its fossil delta. */
  prev?: { seq: number; offset: number; data: string; tags?: Record<string, string> };
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

/** The latest change of one map key, as the delta base of its next change. */
interface KeyedBase {
  seq: number;
  offset: number;
  data: string;
  tags?: Record<string, string>;
  removed?: boolean;
}

/** What a subscriber holds of the channel's stream: every offset up to `offset` of `epoch`. */
interface Held {
  epoch: string;
  offset: number;
}

interface ChannelState {
  json: string;
  /** Subscribers in step with the feed: every publication the feed brings is theirs (one shared frame). */
  live: Set<HubSubscriber>;
  /** Subscribers between registration and their subscribe reply: pushes wait here (the SDK drops early pushes). */
  pending: Map<HubSubscriber, FeedPub[]>;
  /**
   * Subscribers whose subscribe reply reached further than the feed has come (on Redis the history read can overtake
   * the feed): each skips the feed's publications up to what it holds and joins `live` at the next one. Their
   * position is theirs alone; it never moves what the feed delivers to anyone else.
   */
  ahead: Map<HubSubscriber, Held>;
  joinLeave: Set<HubSubscriber>;
  delta: Map<HubSubscriber, DeltaState>;
  /** Subscribers with a tags filter: they get only the publications whose tags match. */
  filters: Map<HubSubscriber, TagsFilter>;
  seq: number;
  /** The last publication on the feed, for the next one's delta. */
  prev?: { seq: number; offset: number; data: string };
  /**
   * Map channels with fossil-delta subscribers: each key's latest change (from the feed, or seeded by a subscribe
   * reply's state), the base of the key's next delta; a removal is kept as `removed` so a stale reply cannot seed it
   * back. Cleared whenever a change passes with no delta subscriber (it would go stale).
   */
  prevByKey: Map<string, KeyedBase>;
  /** Resolves when the broker feeds this node the channel. */
  ready: Promise<void>;
  /**
   * The last offset and epoch the feed delivered since the channel's subscription (or its last invalidation), for
   * gap detection. Only the feed moves it. Epoch '' until the feed delivered a publication with a position.
   */
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
 * channel into a SharedFrame that every subscriber's transport writes as is (each encoding's bytes built once, by the
 * first transport of that encoding: see SharedFrame).
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
    return st ? st.live.size + st.pending.size + st.ahead.size : 0;
  }

  /**
   * Registers a subscriber in pending mode and resolves once the broker feeds the channel, so a history read
   * made after this cannot miss a publication: it is either in history or buffered here.
   */
  async add(
    channel: string,
    sub: HubSubscriber,
    joinLeave: boolean,
    delta?: { publish: boolean },
    filter?: TagsFilter,
  ): Promise<void> {
    let st = this.channels.get(channel);
    if (!st) {
      st = {
        json: JSON.stringify(channel),
        live: new Set(),
        pending: new Map(),
        ahead: new Map(),
        joinLeave: new Set(),
        delta: new Map(),
        filters: new Map(),
        prevByKey: new Map(),
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
    if (filter) st.filters.set(sub, filter);
    this.subscriptionCount++;
    try {
      await st.ready;
    } catch (err) {
      st.pending.delete(sub);
      st.joinLeave.delete(sub);
      st.delta.delete(sub);
      st.filters.delete(sub);
      this.subscriptionCount--;
      throw err;
    }
  }

  /**
   * Ends the pending phase. `position`: the stream position of the subscribe reply (the subscriber holds every
   * publication up to it), undefined when the subscription has none (it then takes every publication that follows).
   * Buffered publications past the position are delivered in order (older ones were in the reply), then the
   * subscriber takes the feed's next ones. A reply that reached further than the feed makes only this subscriber skip
   * the feed's publications it already holds; a reply behind what the feed delivered before the subscriber was
   * registered (nothing buffered covers the difference) makes it recover (unsubscribe 2500) instead of a silent gap.
   * `deltaBase`: the last publication of the reply, which a fossil-delta subscriber now holds as its base.
   */
  activate(
    channel: string,
    sub: HubSubscriber,
    position: StreamPosition | undefined,
    deltaBase?: Publication,
    keyedBases?: readonly Publication[],
  ): void {
    const st = this.channels.get(channel);
    if (!st) return;
    const buffered = st.pending.get(sub);
    if (buffered === undefined) return;
    st.pending.delete(sub);
    const d = st.delta.get(sub);
    // A map subscriber's reply holds each key's value as of its position: the base of the key's next delta, unless
    // the feed already brought a later change of the key.
    if (d && keyedBases && position && (st.epoch === '' || st.epoch === position.epoch)) {
      for (const b of keyedBases) {
        if (b.key === undefined) continue;
        const known = st.prevByKey.get(b.key);
        if (known && known.offset >= b.offset) continue;
        st.prevByKey.set(b.key, {
          seq: 0,
          offset: b.offset,
          data: b.data,
          ...(b.tags ? { tags: b.tags } : {}),
          ...(b.removed ? { removed: true } : {}),
        });
      }
    }
    if (d && deltaBase && deltaBase.offset > 0) d.baseOffset = deltaBase.offset;
    if (!position || position.epoch === '') {
      for (const b of buffered) this.deliverTo(sub, b, d, st.filters.get(sub));
      st.live.add(sub);
      return;
    }
    const held: Held = { epoch: position.epoch, offset: position.offset };
    let gap = false;
    for (const b of buffered) {
      const step = this.stepHeld(held, b);
      if (step === 'deliver') this.deliverTo(sub, b, d, st.filters.get(sub));
      else if (step === 'gap') {
        gap = true;
        break;
      }
    }
    if (gap || (st.epoch === held.epoch && held.offset < st.lastOffset)) {
      // The feed delivered publications this subscriber neither holds nor has buffered.
      st.live.add(sub);
      sub.onInsufficientState(channel);
      return;
    }
    if (
      d &&
      deltaBase &&
      deltaBase.offset === held.offset &&
      !st.prev &&
      (st.epoch === '' || st.epoch === held.epoch)
    ) {
      // The feed kept no previous publication (no delta subscriber then, or none came yet): the one the reply ended
      // with can be the base of the next one's delta (a patch is only sent for the offset right after it).
      st.prev = { seq: st.seq, offset: deltaBase.offset, data: deltaBase.data };
    }
    if (st.epoch === held.epoch && held.offset === st.lastOffset) {
      st.live.add(sub);
    } else {
      // Ahead of the feed, or the feed has not shown its position yet (or shows another epoch): the next publications
      // decide, for this subscriber alone.
      st.ahead.set(sub, held);
    }
  }

  /**
   * One feed publication against what a positioned subscriber holds: skip what it has, deliver the next one (and
   * count it as held), and anything else is a gap it cannot fill.
   */
  private stepHeld(held: Held, e: FeedPub): 'skip' | 'deliver' | 'gap' {
    if (e.pub.offset === 0) return 'deliver';
    if (e.epoch !== held.epoch) return 'gap';
    if (e.pub.offset <= held.offset) return 'skip';
    if (e.pub.offset !== held.offset + 1) return 'gap';
    held.offset = e.pub.offset;
    return 'deliver';
  }

  remove(channel: string, sub: HubSubscriber): void {
    const st = this.channels.get(channel);
    if (!st) return;
    const had = st.live.delete(sub) || st.pending.delete(sub) || st.ahead.delete(sub);
    st.joinLeave.delete(sub);
    st.delta.delete(sub);
    st.filters.delete(sub);
    if (had) this.subscriptionCount--;
    if (st.live.size === 0 && st.pending.size === 0 && st.ahead.size === 0) {
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
      // The feed itself skipped publications (or changed epoch): nobody on this node can be vouched for.
      const gap = st.epoch !== '' && (position.epoch !== st.epoch || pub.offset !== st.lastOffset + 1);
      st.epoch = position.epoch;
      st.lastOffset = pub.offset;
      if (gap) {
        this.invalidate(channel);
        return 0;
      }
    }
    const key = pub.key;
    let prev: FeedPub['prev'] = st.prev;
    if (key !== undefined) {
      const base = st.prevByKey.get(key);
      prev = base && !base.removed ? base : undefined;
    }
    const entry: FeedPub = {
      channel,
      channelJson: st.json,
      pub,
      seq: ++st.seq,
      epoch: pub.offset > 0 ? position.epoch : '',
      prev,
      frame: lazyPubFrame(channel, st.json, pub),
    };
    if (key === undefined) {
      st.prev = st.delta.size > 0 ? { seq: entry.seq, offset: pub.offset, data: pub.data } : undefined;
    } else if (st.delta.size === 0) {
      if (st.prevByKey.size > 0) st.prevByKey.clear();
    } else {
      st.prevByKey.set(key, {
        seq: entry.seq,
        offset: pub.offset,
        data: pub.data,
        ...(pub.tags ? { tags: pub.tags } : {}),
        ...(pub.removed ? { removed: true } : {}),
      });
    }
    let delivered = st.live.size;
    if (st.delta.size === 0 && st.filters.size === 0) for (const sub of st.live) sub.deliver(entry.frame);
    else for (const sub of st.live) this.deliverTo(sub, entry, st.delta.get(sub), st.filters.get(sub));
    if (st.ahead.size > 0) delivered += this.feedAhead(channel, st, entry);
    for (const buf of st.pending.values()) buf.push(entry);
    return delivered;
  }

  /**
   * Subscribers whose reply reached past the feed: each skips what it holds, takes the next publication and is then
   * in step with the feed (moves to `live`); a publication it can neither skip nor take makes it recover.
   */
  private feedAhead(channel: string, st: ChannelState, entry: FeedPub): number {
    let delivered = 0;
    let lost: HubSubscriber[] | undefined;
    for (const [sub, held] of st.ahead) {
      const step = this.stepHeld(held, entry);
      if (step === 'gap') {
        (lost ??= []).push(sub);
        continue;
      }
      if (step === 'deliver') {
        this.deliverTo(sub, entry, st.delta.get(sub), st.filters.get(sub));
        delivered++;
      }
      if (entry.pub.offset === 0 || held.offset === entry.pub.offset) {
        st.ahead.delete(sub);
        st.live.add(sub);
      }
    }
    for (const sub of lost ?? []) sub.onInsufficientState(channel);
    return delivered;
  }

  /**
   * A fossil-delta subscriber gets a patch only when the publication before this one is the base its SDK holds
   * (it received it here or in its subscribe reply); otherwise the full payload as a JSON string, which becomes its
   * new base. Frames are built once per publication and shared.
   */
  private deliverTo(sub: HubSubscriber, e: FeedPub, d: DeltaState | undefined, filter?: TagsFilter): void {
    // A filtered-out publication is not delivered; a delta subscriber's base stays, so its next one is sent whole.
    if (filter && !matchesTags(filter, e.pub.tags)) return;
    if (!d) {
      sub.deliver(e.frame);
      return;
    }
    const prev = e.prev;
    if (e.pub.key !== undefined) {
      // A map change: the key's own chain. A live subscriber holds the key's latest change (its reply had it, or the
      // feed brought it, unless its filter kept it out); a removal has no payload to patch (the SDK drops its base).
      if (e.pub.removed) {
        sub.deliver(e.frame);
      } else if (d.publish && prev !== undefined && (!filter || matchesTags(filter, prev.tags))) {
        e.delta ??= lazyPubFrame(e.channel, e.channelJson, e.pub, fossilPublicationData(prev.data, e.pub.data));
        sub.deliver(e.delta);
      } else {
        e.fullString ??= lazyPubFrame(e.channel, e.channelJson, e.pub, fossilPublicationData(undefined, e.pub.data));
        sub.deliver(e.fullString);
      }
      return;
    }
    const holdsPrev =
      prev !== undefined &&
      (prev.offset > 0 ? d.baseOffset === prev.offset && e.pub.offset === prev.offset + 1 : d.baseSeq === prev.seq);
    if (d.publish && holdsPrev) {
      e.delta ??= lazyPubFrame(e.channel, e.channelJson, e.pub, fossilPublicationData(prev!.data, e.pub.data));
      sub.deliver(e.delta);
    } else {
      e.fullString ??= lazyPubFrame(e.channel, e.channelJson, e.pub, fossilPublicationData(undefined, e.pub.data));
      sub.deliver(e.fullString);
    }
    d.baseSeq = e.seq;
    d.baseOffset = e.pub.offset > 0 ? e.pub.offset : -1;
  }

  onJoin(channel: string, info: ClientInfo): void {
    const st = this.channels.get(channel);
    if (!st || st.joinLeave.size === 0) return;
    const frame: SharedFrame = { text: encodeJoinPush(st.json, info) };
    for (const sub of st.joinLeave) if (st.live.has(sub) || st.ahead.has(sub)) sub.deliver(frame);
  }

  onLeave(channel: string, info: ClientInfo): void {
    const st = this.channels.get(channel);
    if (!st || st.joinLeave.size === 0) return;
    const frame: SharedFrame = { text: encodeLeavePush(st.json, info) };
    for (const sub of st.joinLeave) if (st.live.has(sub) || st.ahead.has(sub)) sub.deliver(frame);
  }

  /**
   * The position up to which this node's subscribers of the channel hold the stream (epoch '' when it has none to
   * vouch for): the last one the feed delivered, or, while the feed has delivered none since the subscribers came,
   * the lowest their subscribe replies hold (then every positioned subscriber is waiting in `ahead`).
   */
  feedPosition(channel: string): StreamPosition | undefined {
    const st = this.channels.get(channel);
    if (!st) return undefined;
    if (st.epoch !== '' || st.ahead.size === 0) return { epoch: st.epoch, offset: st.lastOffset };
    let low: Held | undefined;
    for (const held of st.ahead.values()) {
      if (!low) low = { ...held };
      else if (held.epoch !== low.epoch) return { epoch: '', offset: 0 };
      else low.offset = Math.min(low.offset, held.offset);
    }
    return low;
  }

  /** Every subscriber of the channel must recover: the node cannot vouch for continuity any more. */
  invalidate(channel: string): void {
    const st = this.channels.get(channel);
    if (!st) return;
    st.epoch = '';
    st.lastOffset = 0;
    st.suspended = false;
    st.prev = undefined;
    st.prevByKey.clear();
    for (const sub of [...st.live, ...st.ahead.keys(), ...st.pending.keys()]) sub.onInsufficientState(channel);
  }
}
