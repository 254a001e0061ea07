import type { Broker, BrokerEventHandler, ControlMessage, PublishOptions } from '../broker.js';
import { ErrorCode, HeraldError } from '../../protocol/codes.js';
import type { ClientInfo, PublicationInput, StreamPosition } from '../types.js';
import { errorText, redisFailure, withDeadline, type RedisConnections, type ScriptedRedis } from './connection.js';
import { decodeFeedMessage, encodeEnvelope, encodeJoin, encodeLeave, encodeUnstoredPublication } from './envelope.js';
import type { RedisKeys } from './keys.js';

const SUBSCRIBE_BATCH = 512;

/**
 * Options Redis would refuse only half-way through the publish script (after the stream took an offset), checked
 * before it runs. The namespace config and the API edge already validate them; this keeps the store consistent if
 * an embedding application passes something else.
 */
function invalidPublishOption(o: PublishOptions): string | undefined {
  if (!Number.isSafeInteger(o.historySize)) return `history size ${o.historySize} is not an integer`;
  if (o.historySize > 0 && !(Number.isSafeInteger(Math.round(o.historyTtlMs)) && o.historyTtlMs >= 0))
    return `history TTL ${o.historyTtlMs} ms is not a duration`;
  const ttl = o.idempotentResultTtlMs;
  if (o.idempotencyKey && ttl !== undefined && !(Number.isSafeInteger(Math.round(ttl)) && ttl >= 0))
    return `idempotent result TTL ${ttl} ms is not a duration`;
  return undefined;
}

/**
 * Redis broker (contract in ../broker.ts). A publish with history is one Lua script that appends to the channel's
 * stream and PUBLISHes to its feed, so every node sees a channel's offsets in order. Each node holds one feed
 * subscription per channel with local subscribers (the hub asks for the first and drops it after the last).
 *
 * Feed subscribes wait at most HERALD_REDIS_TIMEOUT, like every command: a subscribe during a Redis freeze answers
 * error 100 in time, and the session's later commands are not held behind it. A SUBSCRIBE that timed out may still
 * be applied when Redis wakes up; the node then unsubscribes again unless it wants the feed by then, so it never
 * stays subscribed to a feed it does not serve, nor forgets one it does.
 *
 * Feed loss: the feed connection does not resubscribe by itself. On every reconnect the broker subscribes to
 * what the node still wants and then reports `onFeedInterrupted`, so the node's clients recover from history
 * whatever was published while the feed was down.
 */
export class RedisBroker implements Broker {
  private handler: BrokerEventHandler | undefined;
  /**
   * Feed names this node wants, feed -> channel; the truth that reconnects restore. Each subscribe call puts a new
   * entry, so a call that fails removes only its own, never the entry of a later call for the same channel.
   */
  private readonly wanted = new Map<string, { channel: string }>();
  private feedWasReady = false;
  private feedLost = false;

  constructor(
    private readonly redis: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly metaTtlMs: number,
    private readonly onError: (what: string, err: unknown) => void,
    private readonly nextEpoch: () => string,
    /** Whether this Redis carries node-to-node control messages (with several shards, only shard 0 does). */
    private readonly carriesControl = true,
    /** Replicas that must confirm a publish before it is acknowledged (HERALD_REDIS_MIN_REPLICAS). */
    private readonly minReplicas = 0,
  ) {}

  /** The WAIT that the publishes of this turn share: one WAIT answers for every write the connection sent before it. */
  private confirming: Promise<number> | undefined;

  private replicated(): Promise<number> {
    this.confirming ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.confirming = undefined;
      // Answer within the command timeout, so a missing replica is reported as such rather than as a timeout.
      return this.redis.commands.wait(this.minReplicas, Math.max(1, Math.floor(this.redis.commandTimeoutMs / 2)));
    });
    return this.confirming;
  }

  async run(handler: BrokerEventHandler): Promise<void> {
    this.handler = handler;
    const feed = this.redis.feed;
    feed.onMessage((name, message) => this.onFeedMessage(name, message));
    feed.onLost(() => {
      if (this.feedWasReady) this.feedLost = true;
    });
    feed.onReady(() => {
      this.restoreFeed().catch((err: unknown) => this.onError('feed resubscribe', err));
    });
    if (feed.ready()) await this.restoreFeed();
  }

  async publish(channel: string, input: PublicationInput, options: PublishOptions): Promise<StreamPosition> {
    const invalid = invalidPublishOption(options);
    if (invalid)
      throw new HeraldError(ErrorCode.badRequest, `redis engine: publish refused, nothing stored: ${invalid}`);
    const idemTtl = options.idempotencyKey ? Math.max(1, Math.round(options.idempotentResultTtlMs ?? 300_000)) : 0;
    this.redis.batchWrites();
    if (options.historySize <= 0) {
      try {
        if (idemTtl === 0) {
          await this.pubsub(this.keys.feed(channel), encodeUnstoredPublication(input));
        } else {
          // The same dedup window as publishes with history, shared by every node: a seen key delivers nothing.
          await this.redis.commands.heraldPublishUnstored(
            this.keys.idempotency(channel, options.idempotencyKey!),
            this.keys.feed(channel),
            encodeUnstoredPublication(input),
            idemTtl,
          );
        }
      } catch (err) {
        const unanswered = err instanceof Error && /timed out/i.test(err.message);
        throw redisFailure(
          unanswered
            ? 'publish (unanswered: it may still be delivered; retry with an idempotency_key to avoid a duplicate)'
            : 'publish (not delivered)',
          err,
        );
      }
      return { offset: 0, epoch: '' };
    }
    const args: [string, string, string, string, string, number, number, number, string, string, number] = [
      this.keys.stream(channel),
      this.keys.meta(channel),
      this.keys.idempotency(channel, options.idempotencyKey ?? ''),
      this.keys.registry(channel),
      encodeEnvelope(input),
      options.historySize,
      Math.max(1, Math.round(options.historyTtlMs)),
      Math.max(this.metaTtlMs, Math.round(options.historyTtlMs)),
      this.keys.feed(channel),
      this.nextEpoch(),
      idemTtl,
    ];
    let result: [number | string, string];
    /** In a cluster, the WAIT that follows the script on its primary's connection (one per publish). */
    let clusterAcks: Promise<number> | undefined;
    try {
      if (this.redis.cluster && this.minReplicas > 0) {
        [result, clusterAcks] = await this.publishAndWait(args);
      } else {
        result = await this.redis.commands.heraldPublish(...args);
      }
    } catch (err) {
      // Unanswered is not the same as refused: a frozen Redis may still run the script when it wakes up.
      const unanswered = err instanceof Error && /timed out/i.test(err.message);
      throw redisFailure(
        unanswered
          ? 'publish (unanswered: it may still be applied; retry with an idempotency_key to avoid a duplicate)'
          : 'publish (not stored)',
        err,
      );
    }
    if (this.minReplicas > 0) {
      let acked: number;
      try {
        acked = await (clusterAcks ?? this.replicated());
      } catch (err) {
        throw redisFailure(
          'publish (stored on the primary, replication unconfirmed: it may be lost in a failover or still be delivered; retry with an idempotency_key)',
          err,
        );
      }
      if (acked < this.minReplicas) {
        throw redisFailure(
          'publish',
          new Error(
            `stored on the primary but confirmed by ${acked} of HERALD_REDIS_MIN_REPLICAS=${this.minReplicas} replicas in time: it may be lost in a failover or still be delivered; retry with an idempotency_key`,
          ),
        );
      }
    }
    const [first, second] = result;
    if (Number(first) === 0) {
      // Seen idempotency key: the first publish's position, nothing delivered again.
      const colon = second.indexOf(':');
      return { offset: Number(second.slice(0, colon)), epoch: second.slice(colon + 1) };
    }
    return { offset: Number(first), epoch: second };
  }

  /**
   * A cluster has no single connection whose WAIT covers every publish: the script and its WAIT go together in one
   * pipeline, which ioredis sends to the primary of the channel's slot. Resolves with the script's answer and the
   * WAIT's (rejected when the WAIT failed); rejects when the script failed.
   */
  private async publishAndWait(
    args: [string, string, string, string, string, number, number, number, string, string, number],
  ): Promise<[[number | string, string], Promise<number>]> {
    const pipeline = this.redis.commands.pipeline() as ReturnType<ScriptedRedis['pipeline']> & {
      heraldPublish(...a: typeof args): unknown;
    };
    pipeline.heraldPublish(...args);
    pipeline.wait(this.minReplicas, Math.max(1, Math.floor(this.redis.commandTimeoutMs / 2)));
    const out = (await pipeline.exec()) ?? [];
    const [script, wait] = out;
    if (!script) throw new Error('Connection is closed.');
    if (script[0]) throw script[0];
    const acks =
      wait && !wait[0] ? Promise.resolve(Number(wait[1])) : Promise.reject(wait?.[0] ?? new Error('no WAIT answer'));
    acks.catch(() => {});
    return [script[1] as [number | string, string], acks];
  }

  async publishJoin(channel: string, info: ClientInfo): Promise<void> {
    await this.send(this.keys.feed(channel), encodeJoin(info), 'join');
  }

  async publishLeave(channel: string, info: ClientInfo): Promise<void> {
    await this.send(this.keys.feed(channel), encodeLeave(info), 'leave');
  }

  async publishControl(message: ControlMessage): Promise<void> {
    await this.send(this.keys.control, JSON.stringify(message), 'control message');
  }

  async subscribe(channel: string): Promise<void> {
    const name = this.keys.feed(channel);
    if (!this.redis.feed.ready()) throw redisFailure('subscribe', new Error('not connected'));
    const entry = { channel };
    this.wanted.set(name, entry);
    const sent = this.redis.feed.subscribe([name]);
    try {
      await withDeadline(sent, this.redis.commandTimeoutMs);
    } catch (err) {
      // The hub forgets the channel when this fails, so the node must not keep wanting it.
      if (this.wanted.get(name) === entry) this.wanted.delete(name);
      // Unanswered: Redis may still apply it. Replies come in order, so when it does, any later subscribe or
      // unsubscribe of this feed was sent after it and `wanted` says what the node wants now.
      sent.then(
        () => this.dropUnwanted(name),
        () => {},
      );
      throw redisFailure('subscribe', err);
    }
  }

  /** Unsubscribes a feed that Redis subscribed late (after its subscribe timed out), unless it is wanted again. */
  private dropUnwanted(name: string): void {
    if (this.wanted.has(name) || !this.redis.feed.ready()) return;
    this.redis.feed
      .unsubscribe(name)
      .catch((err: unknown) => this.onError(`feed unsubscribe of ${name}`, new Error(errorText(err))));
  }

  async unsubscribe(channel: string): Promise<void> {
    const name = this.keys.feed(channel);
    this.wanted.delete(name);
    if (!this.redis.feed.ready()) return;
    try {
      // Unanswered, it is still applied when Redis answers: the node no longer wants the feed either way.
      await withDeadline(this.redis.feed.unsubscribe(name), this.redis.commandTimeoutMs);
    } catch (err) {
      throw redisFailure('unsubscribe', err);
    }
  }

  async close(): Promise<void> {
    this.handler = undefined;
    this.wanted.clear();
  }

  private async send(name: string, text: string, what: string): Promise<void> {
    try {
      await this.pubsub(name, text);
    } catch (err) {
      throw redisFailure(what, err);
    }
  }

  /** PUBLISH on one Redis; SPUBLISH in a cluster (to the primary of the name's slot). */
  private async pubsub(name: string, text: string): Promise<void> {
    if (this.redis.cluster) await this.redis.commands.spublish(name, text);
    else await this.redis.commands.publish(name, text);
  }

  private onFeedMessage(name: string, message: string): void {
    const handler = this.handler;
    if (!handler) return;
    try {
      if (name === this.keys.control) {
        handler.onControl(JSON.parse(message) as ControlMessage);
        return;
      }
      const channel = this.wanted.get(name)?.channel ?? this.keys.channelOfFeed(name);
      if (channel === undefined) return;
      const m = decodeFeedMessage(message);
      if (m.kind === 'pub') handler.onPublication(channel, m.pub, { offset: m.pub.offset, epoch: m.epoch });
      else if (m.kind === 'join') handler.onJoin(channel, m.info);
      else handler.onLeave(channel, m.info);
    } catch (err) {
      this.onError(`feed message on ${name}`, err);
    }
  }

  /** (Re)subscribes the control channel and every wanted feed; after a reconnect, tells the node to recover. */
  private async restoreFeed(): Promise<void> {
    const names = this.carriesControl ? [this.keys.control, ...this.wanted.keys()] : [...this.wanted.keys()];
    try {
      for (let i = 0; i < names.length; i += SUBSCRIBE_BATCH)
        await this.redis.feed.subscribe(names.slice(i, i + SUBSCRIBE_BATCH));
    } catch (err) {
      // The connection dropped again; the next 'ready' retries.
      this.onError('feed resubscribe', new Error(errorText(err)));
      return;
    }
    const interrupted = this.feedLost;
    this.feedWasReady = true;
    this.feedLost = false;
    if (interrupted) this.handler?.onFeedInterrupted();
  }
}
