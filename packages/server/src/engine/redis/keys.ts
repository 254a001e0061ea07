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
 *   <prefix>.pub.{ch}        PUBSUB  the channel's feed: publications, join and leave
 *   <prefix>.control         PUBSUB  node-to-node control messages
 *   <prefix>.epochs          STRING  first-life registry (scripts.ts FIRST_LIFE; named from the meta key inside Lua)
 *   <prefix>.wh.hold.{ch}    ZSET    webhook lifecycle holds: "<node uid>|<key>" -> expiry (ms, Redis clock)
 *   <prefix>.wh.count.{ch}   HASH    webhook lifecycle: key ("o", "p:<user>") -> number of nodes holding it
 *   <prefix>.wh.index        ZSET    channels with holds -> their earliest hold expiry (swept; named inside Lua)
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
  lifecycleHolds(channel: string): string;
  lifecycleCounts(channel: string): string;
  readonly lifecycleIndex: string;
  readonly prefix: string;
}

export function redisKeys(prefix: string): RedisKeys {
  if (/[{}]/.test(prefix))
    throw new Error(
      `HERALD_REDIS_PREFIX=${JSON.stringify(prefix)}: must not contain { or } (they are Redis Cluster hash tags)`,
    );
  const feedHead = `${prefix}.pub.{`;
  return {
    stream: (ch) => `${prefix}.stream.{${ch}}`,
    meta: (ch) => `${prefix}.meta.{${ch}}`,
    idempotency: (ch, key) => `${prefix}.idem.{${ch}}.${key}`,
    presence: (ch) => `${prefix}.presence.{${ch}}`,
    presenceExpiry: (ch) => `${prefix}.presexp.{${ch}}`,
    feed: (ch) => feedHead + ch + '}',
    channelOfFeed: (feed) =>
      feed.startsWith(feedHead) && feed.endsWith('}') ? feed.slice(feedHead.length, -1) : undefined,
    control: `${prefix}.control`,
    // LIFECYCLE_SWEEP_SCRIPT builds these two names from the prefix: change them together.
    lifecycleHolds: (ch) => `${prefix}.wh.hold.{${ch}}`,
    lifecycleCounts: (ch) => `${prefix}.wh.count.{${ch}}`,
    lifecycleIndex: `${prefix}.wh.index`,
    prefix,
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
