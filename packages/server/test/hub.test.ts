/**
 * The hub's per-subscriber positions over a fake broker and fake subscribers (issue #12 item 1): what a joiner read
 * from history is its own and never moves what the feed delivers to the subscribers already on the channel.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Broker } from '../src/engine/broker.js';
import type { Publication, StreamPosition } from '../src/engine/types.js';
import { Hub, type HubSubscriber } from '../src/hub.js';
import { encodePubPush } from '../src/protocol/replies.js';
import { fossilPublicationData } from '../src/protocol/fossil-delta.js';
import type { SharedFrame } from '../src/transport/connection.js';
import { sharedProtobufReply } from '../src/transport/frame.js';
import { protobufReply } from '../src/protocol/protobuf/replies.js';

const CHANNEL = 'news';
const E = 'epoch-1';

/** The broker seam: the feed subscription is confirmed at once; the test plays the feed itself. */
function fakeBroker(): Broker {
  const refuse = () => Promise.reject(new Error('not used by the hub'));
  return {
    run: refuse,
    publish: refuse,
    publishJoin: refuse,
    publishLeave: refuse,
    publishControl: refuse,
    close: refuse,
    subscribe: () => Promise.resolve(),
    unsubscribe: () => Promise.resolve(),
  };
}

/** A subscriber that records what it is sent and, like a session, leaves the channel when told to recover. */
class FakeSubscriber implements HubSubscriber {
  readonly frames: SharedFrame[] = [];
  toldToRecover = 0;
  constructor(private readonly hub: Hub) {}
  deliver(frame: SharedFrame): void {
    this.frames.push(frame);
  }
  onInsufficientState(channel: string): void {
    this.toldToRecover++;
    this.hub.remove(channel, this);
  }
  get offsets(): number[] {
    return this.frames.map((f) => JSON.parse(f.text).push.pub?.offset).filter((o) => o !== undefined);
  }
}

function pub(offset: number, data = `{"n":${offset}}`): Publication {
  return { offset, data };
}

function setup() {
  const hub = new Hub(fakeBroker(), () => {});
  const feed = (offset: number, epoch = E) => hub.onPublication(CHANNEL, pub(offset), { epoch, offset });
  const subscriber = () => new FakeSubscriber(hub);
  /** Registers, then ends the pending phase at `position` (what its subscribe reply held). */
  const join = async (
    sub: FakeSubscriber,
    position: StreamPosition | undefined,
    deltaBase?: Publication,
    delta?: { publish: boolean },
  ) => {
    await hub.add(CHANNEL, sub, false, delta);
    hub.activate(CHANNEL, sub, position, deltaBase);
  };
  return { hub, feed, subscriber, join };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('hub: a subscribe position belongs to its subscriber', () => {
  test("a subscriber already on the channel gets every feed publication when a joiner's history reply reached past the feed", async () => {
    const { feed, subscriber, join } = setup();
    const bystander = subscriber();
    await join(bystander, { epoch: E, offset: 0 });
    feed(1);
    // The joiner's history read saw offset 5 while the feed had brought only 1 (Redis: two connections, no order).
    const joiner = subscriber();
    await join(joiner, { epoch: E, offset: 5 });
    for (const o of range(2, 7)) feed(o);
    assert.deepEqual(bystander.offsets, range(1, 7));
    assert.equal(bystander.toldToRecover, 0);
  });

  test('a joiner whose reply reached past the feed skips what it holds and then gets each publication once', async () => {
    const { feed, subscriber, join, hub } = setup();
    const bystander = subscriber();
    await join(bystander, { epoch: E, offset: 0 });
    feed(1);
    const joiner = subscriber();
    await join(joiner, { epoch: E, offset: 5 });
    assert.equal(hub.subscriberCount(CHANNEL), 2);
    for (const o of range(2, 8)) feed(o);
    assert.deepEqual(joiner.offsets, [6, 7, 8]);
    assert.equal(joiner.toldToRecover, 0);
  });

  test('subscribers in step with the feed share one frame per publication', async () => {
    const { feed, subscriber, join } = setup();
    const a = subscriber();
    const b = subscriber();
    await join(a, { epoch: E, offset: 0 });
    feed(1);
    await join(b, { epoch: E, offset: 3 });
    for (const o of range(2, 5)) feed(o);
    assert.equal(a.frames.at(-1), b.frames.at(-1), 'the same SharedFrame object');
    assert.deepEqual(b.offsets, [4, 5]);
  });

  test('a joiner whose reply is behind the feed gets the publications the feed brought while it subscribed, in order', async () => {
    const { hub, feed, subscriber } = setup();
    const bystander = subscriber();
    await hub.add(CHANNEL, bystander, false);
    hub.activate(CHANNEL, bystander, { epoch: E, offset: 0 });
    feed(1);
    const joiner = subscriber();
    await hub.add(CHANNEL, joiner, false);
    for (const o of range(2, 6)) feed(o);
    hub.activate(CHANNEL, joiner, { epoch: E, offset: 2 });
    feed(7);
    assert.deepEqual(joiner.offsets, range(3, 7));
    assert.deepEqual(bystander.offsets, range(1, 7));
  });

  test('a joiner whose reply is behind what the feed delivered before it registered is told to recover instead of missing publications', async () => {
    const { feed, subscriber, join } = setup();
    const bystander = subscriber();
    await join(bystander, { epoch: E, offset: 0 });
    for (const o of range(1, 6)) feed(o);
    const joiner = subscriber();
    await join(joiner, { epoch: E, offset: 3 });
    feed(7);
    assert.equal(joiner.toldToRecover, 1);
    assert.deepEqual(joiner.offsets, []);
    assert.deepEqual(bystander.offsets, range(1, 7));
    assert.equal(bystander.toldToRecover, 0);
  });

  test('a joiner whose next feed publication skips past what it holds is told to recover, and only that joiner', async () => {
    const { feed, subscriber, join } = setup();
    const unpositioned = subscriber();
    await join(unpositioned, undefined);
    const joiner = subscriber();
    await join(joiner, { epoch: E, offset: 3 });
    feed(5);
    assert.equal(joiner.toldToRecover, 1);
    assert.deepEqual(joiner.offsets, []);
    assert.deepEqual(unpositioned.offsets, [5]);
    assert.equal(unpositioned.toldToRecover, 0);
  });

  test('a joiner that read another epoch than the feed carries is told to recover at the next publication', async () => {
    const { feed, subscriber, join } = setup();
    const bystander = subscriber();
    await join(bystander, { epoch: E, offset: 0 });
    feed(1);
    const joiner = subscriber();
    await join(joiner, { epoch: 'epoch-2', offset: 0 });
    assert.equal(joiner.toldToRecover, 0, 'nothing decides yet which epoch is current');
    feed(2);
    assert.equal(joiner.toldToRecover, 1);
    assert.deepEqual(joiner.offsets, []);
    assert.deepEqual(bystander.offsets, [1, 2]);
  });

  test('a gap in the feed itself makes every subscriber recover, those ahead of the feed included', async () => {
    const { feed, subscriber, join } = setup();
    const bystander = subscriber();
    await join(bystander, { epoch: E, offset: 0 });
    feed(1);
    const joiner = subscriber();
    await join(joiner, { epoch: E, offset: 4 });
    feed(3);
    assert.equal(bystander.toldToRecover, 1);
    assert.equal(joiner.toldToRecover, 1);
  });

  test("the feed position only moves with the feed, not with a joiner's reply", async () => {
    const { hub, feed, subscriber, join } = setup();
    const bystander = subscriber();
    await join(bystander, { epoch: E, offset: 0 });
    feed(1);
    await join(subscriber(), { epoch: E, offset: 5 });
    assert.deepEqual(hub.feedPosition(CHANNEL), { epoch: E, offset: 1 });
    feed(2);
    assert.deepEqual(hub.feedPosition(CHANNEL), { epoch: E, offset: 2 });
  });

  test("before the feed delivers anything, the feed position is the lowest position the subscribers' replies hold", async () => {
    const { hub, subscriber, join } = setup();
    await join(subscriber(), { epoch: E, offset: 4 });
    await join(subscriber(), { epoch: E, offset: 2 });
    assert.deepEqual(hub.feedPosition(CHANNEL), { epoch: E, offset: 2 });
    await join(subscriber(), { epoch: 'epoch-2', offset: 9 });
    assert.deepEqual(hub.feedPosition(CHANNEL), { epoch: '', offset: 0 }, 'replies on two epochs vouch for nothing');
  });

  test('join and leave pushes reach a subscriber waiting ahead of the feed', async () => {
    const { hub, feed, subscriber } = setup();
    const bystander = subscriber();
    await hub.add(CHANNEL, bystander, true);
    hub.activate(CHANNEL, bystander, { epoch: E, offset: 0 });
    feed(1);
    const joiner = subscriber();
    await hub.add(CHANNEL, joiner, true);
    hub.activate(CHANNEL, joiner, { epoch: E, offset: 3 });
    hub.onJoin(CHANNEL, { user: 'u', client: 'c' });
    assert.equal(JSON.parse(joiner.frames.at(-1)!.text).push.join.info.user, 'u');
  });
});

describe('hub: fossil delta bases stay per subscriber', () => {
  const json = JSON.stringify(CHANNEL);
  const data = (o: number) => JSON.stringify({ text: 'a long and mostly unchanging document '.repeat(40), n: o });
  const full = (o: number) => encodePubPush(json, pub(o, data(o)), fossilPublicationData(undefined, data(o)));
  const patch = (o: number, base: number) => {
    const p = fossilPublicationData(data(base), data(o));
    assert.equal(p.delta, true, 'the payloads are built so that a patch is smaller than the payload');
    return encodePubPush(json, pub(o, data(o)), p);
  };

  test("a delta joiner ahead of the feed gets a patch against its reply's last publication, and the bystander keeps its own chain", async () => {
    const hub = new Hub(fakeBroker(), () => {});
    const feed = (o: number) => hub.onPublication(CHANNEL, pub(o, data(o)), { epoch: E, offset: o });
    const bystander = new FakeSubscriber(hub);
    await hub.add(CHANNEL, bystander, false, { publish: true });
    hub.activate(CHANNEL, bystander, { epoch: E, offset: 0 });
    feed(1);
    feed(2);
    const joiner = new FakeSubscriber(hub);
    await hub.add(CHANNEL, joiner, false, { publish: true });
    hub.activate(CHANNEL, joiner, { epoch: E, offset: 4 }, pub(4, data(4)));
    for (const o of [3, 4, 5, 6]) feed(o);
    assert.deepEqual(
      bystander.frames.map((f) => f.text),
      [full(1), patch(2, 1), patch(3, 2), patch(4, 3), patch(5, 4), patch(6, 5)],
    );
    assert.deepEqual(
      joiner.frames.map((f) => f.text),
      [patch(5, 4), patch(6, 5)],
    );
  });

  test("a delta joiner on a channel the feed has not delivered to yet gets the next publication as a patch on its reply's last one", async () => {
    const hub = new Hub(fakeBroker(), () => {});
    const joiner = new FakeSubscriber(hub);
    await hub.add(CHANNEL, joiner, false, { publish: true });
    hub.activate(CHANNEL, joiner, { epoch: E, offset: 4 }, pub(4, data(4)));
    hub.onPublication(CHANNEL, pub(5, data(5)), { epoch: E, offset: 5 });
    assert.deepEqual(
      joiner.frames.map((f) => f.text),
      [patch(5, 4)],
    );
  });

  test("a delta joiner behind the feed gets the buffered publications as patches on its reply's last one", async () => {
    const hub = new Hub(fakeBroker(), () => {});
    const feed = (o: number) => hub.onPublication(CHANNEL, pub(o, data(o)), { epoch: E, offset: o });
    const bystander = new FakeSubscriber(hub);
    await hub.add(CHANNEL, bystander, false, { publish: true });
    hub.activate(CHANNEL, bystander, { epoch: E, offset: 0 });
    feed(1);
    const joiner = new FakeSubscriber(hub);
    await hub.add(CHANNEL, joiner, false, { publish: true });
    feed(2);
    feed(3);
    hub.activate(CHANNEL, joiner, { epoch: E, offset: 2 }, pub(2, data(2)));
    feed(4);
    assert.deepEqual(
      joiner.frames.map((f) => f.text),
      [patch(3, 2), patch(4, 3)],
    );
  });
});

describe('hub: every subscriber gets its stream exactly once, whatever the order of feed and history replies', () => {
  /**
   * A model of one node: the store's top offset grows with publishes; the feed brings them later, in order; joiners
   * register, read the store's top (their reply) at some later moment, then activate, and may leave. Whatever the
   * interleaving, a subscriber that stays gets exactly the offsets after the one it started from, and nobody is told
   * to recover (the model's store and feed never lose anything).
   */
  type Step =
    | { kind: 'publish' }
    | { kind: 'feed' }
    | { kind: 'add' }
    | { kind: 'read'; pick: number }
    | { kind: 'activate'; pick: number }
    | { kind: 'leave'; pick: number };
  const step = fc.oneof(
    { arbitrary: fc.constant<Step>({ kind: 'publish' }), weight: 4 },
    { arbitrary: fc.constant<Step>({ kind: 'feed' }), weight: 4 },
    { arbitrary: fc.constant<Step>({ kind: 'add' }), weight: 1 },
    { arbitrary: fc.nat(20).map((pick): Step => ({ kind: 'read', pick })), weight: 1 },
    { arbitrary: fc.nat(20).map((pick): Step => ({ kind: 'activate', pick })), weight: 1 },
    { arbitrary: fc.nat(20).map((pick): Step => ({ kind: 'leave', pick })), weight: 1 },
  );

  test('random interleavings of publications, feed deliveries and joins lose nothing and duplicate nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 120 }), async (steps) => {
        const hub = new Hub(fakeBroker(), () => {});
        let top = 0;
        let fed = 0;
        interface Member {
          sub: FakeSubscriber;
          from?: number;
          state: 'registered' | 'read' | 'active' | 'gone';
        }
        const members: Member[] = [];
        const bystander: Member = { sub: new FakeSubscriber(hub), from: 0, state: 'active' };
        await hub.add(CHANNEL, bystander.sub, false);
        hub.activate(CHANNEL, bystander.sub, { epoch: E, offset: 0 });
        members.push(bystander);
        const pick = (n: number, state: Member['state']) => {
          const candidates = members.filter((m) => m.state === state);
          return candidates.length > 0 ? candidates[n % candidates.length] : undefined;
        };
        for (const s of steps) {
          if (s.kind === 'publish') top++;
          else if (s.kind === 'feed' && fed < top) {
            fed++;
            hub.onPublication(CHANNEL, pub(fed), { epoch: E, offset: fed });
          } else if (s.kind === 'add') {
            const m: Member = { sub: new FakeSubscriber(hub), state: 'registered' };
            members.push(m);
            await hub.add(CHANNEL, m.sub, false);
          } else if (s.kind === 'read') {
            const m = pick(s.pick, 'registered');
            if (m) {
              m.from = top;
              m.state = 'read';
            }
          } else if (s.kind === 'activate') {
            const m = pick(s.pick, 'read');
            if (m) {
              hub.activate(CHANNEL, m.sub, { epoch: E, offset: m.from! });
              m.state = 'active';
            }
          } else if (s.kind === 'leave') {
            const m = pick(s.pick, 'active');
            if (m && m !== bystander) {
              hub.remove(CHANNEL, m.sub);
              m.state = 'gone';
            }
          }
        }
        for (const m of members) {
          if (m.state !== 'read') continue;
          hub.activate(CHANNEL, m.sub, { epoch: E, offset: m.from! });
          m.state = 'active';
        }
        while (fed < top) {
          fed++;
          hub.onPublication(CHANNEL, pub(fed), { epoch: E, offset: fed });
        }
        for (const m of members) {
          assert.equal(m.sub.toldToRecover, 0);
          if (m.state === 'active') assert.deepEqual(m.sub.offsets, range(m.from! + 1, top));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('hub: one serialized frame per publication per encoding', () => {
  test('every subscriber gets the same frame, whose protobuf Reply is built once by the first protobuf transport and reused by the others', async () => {
    const { feed, subscriber, join } = setup();
    const subs = [subscriber(), subscriber(), subscriber()];
    for (const s of subs) await join(s, { epoch: E, offset: 0 });
    feed(1);
    const frames = subs.map((s) => s.frames.at(-1)!);
    assert.ok(frames.every((f) => f === frames[0]));
    const replies = frames.map((f) => sharedProtobufReply(f));
    assert.ok(
      replies.every((r) => r === replies[0]),
      'the same Buffer for every protobuf subscriber',
    );
    assert.deepEqual(replies[0], protobufReply(encodePubPush(JSON.stringify(CHANNEL), pub(1))));
    assert.equal(frames[0]!.text, encodePubPush(JSON.stringify(CHANNEL), pub(1)));
  });
});
