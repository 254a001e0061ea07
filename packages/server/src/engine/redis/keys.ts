import { keySlot, slotTag } from './slots.js';

/**
 * Key layout of the Redis engine. Every key of one channel carries the channel as its hash tag (`{channel}`), so
 * all of them live in one Redis Cluster slot and one Lua script can touch them atomically. Channel names never
 * contain `{` or `}` (channels/name.ts refuses them), so the tag is exactly the channel.
 *
 *   <prefix>.stream.{ch}     STREAM  history: entry id `<offset>-0`, fields t (ms, Redis clock) and p (envelope)
 *   <prefix>.meta.{ch}       HASH    e = epoch, s = top offset; outlives the stream by the meta TTL
 *   <prefix>.idem.{ch}.<key> STRING  "<offset>:<epoch>" of an idempotent publish, for its result TTL
 *   <prefix>.presence.{ch}   HASH    client id -> ClientInfo JSON
 *   <prefix>.presexp.{ch}    ZSET    client id -> expiry (ms, Redis clock)
 *   <prefix>.pub.{ch}        PUBSUB  the channel's feed: publications, join and leave (sharded pub/sub in a cluster)
 *   <prefix>.control         PUBSUB  node-to-node control messages (sharded pub/sub in a cluster: one slot)
 *   <prefix>.map.{ch}        HASH    map state: key -> "<offset>:<envelope>" (envelope.ts, key in its header)
 *   <prefix>.mapkeys.{ch}    ZSET    map keys, all score 0 (ZRANGEBYLEX pages them in key order)
 *   <prefix>.mapexp.{ch}     ZSET    map key -> expiry (ms, Redis clock), for keys with a TTL
 *   <prefix>.wh.hold.{ch}    ZSET    webhook lifecycle holds: "<node uid>|<key>" -> expiry (ms, Redis clock)
 *   <prefix>.wh.count.{ch}   HASH    webhook lifecycle: key ("o", "p:<user>") -> number of nodes holding it
 * One Redis (standalone, Sentinel, each client-side shard):
 *   <prefix>.epochs          STRING  first-life registry (scripts.ts FIRST_LIFE)
 *   <prefix>.wh.index        ZSET    channels with holds -> their earliest hold expiry (swept)
 *   <prefix>.mapidx          ZSET    map channels with expiring keys -> their earliest key expiry (swept)
 * Redis Cluster: these two per hash slot, tagged with the slot's own tag (slots.ts slotTag), so that a script of one
 * channel touches only keys of the channel's slot; and one set that lists the slots with lifecycle holds:
 *   <prefix>.epochs.{<slot tag>}    STRING  the slot's first-life registry
 *   <prefix>.wh.index.{<slot tag>}  ZSET    the slot's channels with holds
 *   <prefix>.wh.slots               SET     slot tags whose index may hold channels (the sweep walks them)
 *   <prefix>.mapidx.{<slot tag>}    ZSET    the slot's map channels with expiring keys
 *   <prefix>.mapidx.slots           SET     slot tags whose map index may hold channels
 */
export interface RedisKeys {
  stream(channel: string): string;
  meta(channel: string): string;
  idempotency(channel: string, key: string): string;
  presence(channel: string): string;
  presenceExpiry(channel: string): string;
  feed(channel: string): string;
  /** The Herald channel of a feed name, or undefined when the name is not a channel feed of this prefix. */
  channelOfFeed(feed: string): string | undefined;
  readonly control: string;
  /** The first-life registry that holds the channel's bit (one per Redis, or per slot in a cluster). */
  registry(channel: string): string;
  mapState(channel: string): string;
  mapKeys(channel: string): string;
  mapExpiry(channel: string): string;
  /** The index of map channels with expiring keys that lists the channel (one per Redis, or per slot). */
  mapIndex(channel: string): string;
  mapIndexOfTag(tag: string): string;
  /** Cluster only: the set of slot tags whose map index may list channels. */
  readonly mapSlots: string;
  lifecycleHolds(channel: string): string;
  lifecycleCounts(channel: string): string;
  /** The lifecycle index that lists the channel (one per Redis, or per slot in a cluster). */
  lifecycleIndex(channel: string): string;
  /** Cluster only: the set of slot tags whose lifecycle index may list channels. */
  readonly lifecycleSlots: string;
  /** The lifecycle index of a slot tag (cluster) or the one index (standalone: the tag is ignored). */
  lifecycleIndexOfTag(tag: string): string;
  /** The slot tag of a channel (cluster; '' standalone). */
  slotTagOf(channel: string): string;
  readonly prefix: string;
  /** The layout of a Redis Cluster (per-slot registries and lifecycle indexes). */
  readonly cluster: boolean;
}

export function redisKeys(prefix: string, options: { cluster?: boolean } = {}): RedisKeys {
  if (/[{}]/.test(prefix))
    throw new Error(
      `HERALD_REDIS_PREFIX=${JSON.stringify(prefix)}: must not contain { or } (they are Redis Cluster hash tags)`,
    );
  const cluster = options.cluster === true;
  const feedHead = `${prefix}.pub.{`;
  const meta = (ch: string): string => `${prefix}.meta.{${ch}}`;
  const slotTagOf = (ch: string): string => (cluster ? slotTag(keySlot(meta(ch))) : '');
  const indexOfTag = (tag: string): string => (cluster ? `${prefix}.wh.index.{${tag}}` : `${prefix}.wh.index`);
  return {
    stream: (ch) => `${prefix}.stream.{${ch}}`,
    meta,
    idempotency: (ch, key) => `${prefix}.idem.{${ch}}.${key}`,
    presence: (ch) => `${prefix}.presence.{${ch}}`,
    presenceExpiry: (ch) => `${prefix}.presexp.{${ch}}`,
    feed: (ch) => feedHead + ch + '}',
    channelOfFeed: (feed) =>
      feed.startsWith(feedHead) && feed.endsWith('}') ? feed.slice(feedHead.length, -1) : undefined,
    control: `${prefix}.control`,
    registry: (ch) => (cluster ? `${prefix}.epochs.{${slotTagOf(ch)}}` : `${prefix}.epochs`),
    mapState: (ch) => `${prefix}.map.{${ch}}`,
    mapKeys: (ch) => `${prefix}.mapkeys.{${ch}}`,
    mapExpiry: (ch) => `${prefix}.mapexp.{${ch}}`,
    mapIndex: (ch) => (cluster ? `${prefix}.mapidx.{${slotTagOf(ch)}}` : `${prefix}.mapidx`),
    mapIndexOfTag: (tag) => (cluster ? `${prefix}.mapidx.{${tag}}` : `${prefix}.mapidx`),
    mapSlots: `${prefix}.mapidx.slots`,
    // LIFECYCLE_SWEEP_SCRIPT builds these two names from the prefix: change them together.
    lifecycleHolds: (ch) => `${prefix}.wh.hold.{${ch}}`,
    lifecycleCounts: (ch) => `${prefix}.wh.count.{${ch}}`,
    lifecycleIndex: (ch) => indexOfTag(slotTagOf(ch)),
    lifecycleSlots: `${prefix}.wh.slots`,
    lifecycleIndexOfTag: indexOfTag,
    slotTagOf,
    prefix,
    cluster,
  };
}

/**
 * Candidate epochs for scripts that may create a stream's meta: a random per-process seed and a counter, unique
 * across nodes and restarts without a random draw per publication (only the first publish of a stream uses it).
 */
export function epochSource(seed: string): () => string {
  let n = 0;
  return () => seed + (++n).toString(36);
}
