// Feed continuity (src/feed-continuity.ts) over a fake hub and a fake engine, on mocked timers: which channels make
// their subscribers recover (hub.invalidate) after the feed was lost, and what a rewound stream does.
import { describe, it, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelRules } from '../src/channels/rules.js';
import type { Engine } from '../src/engine/engine.js';
import type { StreamPosition } from '../src/engine/types.js';
import { createFeedContinuity } from '../src/feed-continuity.js';
import type { Hub } from '../src/hub.js';
import { createLogger } from '../src/logger.js';

const silent = createLogger('silent', false);

/** What the node's hub saw of each channel on the feed, and the channels it was told to make recover. */
class FakeHub {
  readonly seen = new Map<string, StreamPosition>();
  readonly invalidated: string[] = [];
  readonly order: string[] = [];
  channelNames(): IterableIterator<string> {
    return this.seen.keys();
  }
  feedPosition(channel: string): StreamPosition | undefined {
    return this.seen.get(channel);
  }
  invalidate(channel: string): void {
    this.invalidated.push(channel);
    this.order.push(`invalidate ${channel}`);
  }
}

/** The store's positions; a channel's reads (or epoch rotations) fail as many times as told first. */
class FakeStore {
  readonly positions = new Map<string, StreamPosition>();
  readonly readFailures = new Map<string, number>();
  readonly reads = new Map<string, number>();
  rotateFailures = 0;
  readonly rotations: [string, string][] = [];
  constructor(private readonly hub: FakeHub) {}
  engine(): Engine {
    const history = {
      history: async (channel: string) => {
        this.reads.set(channel, (this.reads.get(channel) ?? 0) + 1);
        const left = this.readFailures.get(channel) ?? 0;
        if (left > 0) {
          this.readFailures.set(channel, left - 1);
          throw new Error('store still failing over');
        }
        const position = this.positions.get(channel);
        if (!position) throw new Error(`no position for ${channel}`);
        return { publications: [], position };
      },
      rotateEpoch: async (channel: string, epoch: string) => {
        this.rotations.push([channel, epoch]);
        this.hub.order.push(`rotate ${channel}`);
        if (this.rotateFailures > 0) {
          this.rotateFailures--;
          throw new Error('store not writable yet');
        }
      },
    };
    return { name: 'fake', history, isReady: () => true } as unknown as Engine;
  }
}

function rules(historySize: number): ChannelRules {
  return {
    options: { history_size: historySize, history_ttl_ms: 60_000, history_meta_ttl_ms: 0 },
  } as unknown as ChannelRules;
}

let hub: FakeHub;
let store: FakeStore;
const historyless = new Set<string>();
function continuity() {
  return createFeedContinuity({
    hub: hub as unknown as Hub,
    engine: store.engine(),
    log: silent,
    rulesOf: (channel) => rules(historyless.has(channel) ? 0 : 10),
  });
}

/** Settles `p` by letting promises run and advancing the mocked clock 10 ms at a time (at most 60 simulated s). */
async function settle<T>(p: Promise<T>): Promise<T> {
  let done = false;
  p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  for (let i = 0; i < 6000 && !done; i++) {
    for (let j = 0; j < 5; j++) await Promise.resolve();
    if (!done) mock.timers.tick(10);
  }
  assert.ok(done, 'settled within 60 simulated seconds');
  return p;
}

beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  hub = new FakeHub();
  store = new FakeStore(hub);
  historyless.clear();
});
afterEach(() => mock.timers.reset());

describe('feed continuity after the feed was lost', () => {
  it('makes only the channels whose stream moved (behind the store, or on another epoch) recover; unchanged and history-less channels are left alone', async () => {
    hub.seen.set('same', { offset: 5, epoch: 'e' });
    store.positions.set('same', { offset: 5, epoch: 'e' });
    hub.seen.set('behind', { offset: 3, epoch: 'e' });
    store.positions.set('behind', { offset: 5, epoch: 'e' });
    hub.seen.set('new-epoch', { offset: 5, epoch: 'e' });
    store.positions.set('new-epoch', { offset: 5, epoch: 'f' });
    hub.seen.set('no-history', { offset: 0, epoch: '' });
    historyless.add('no-history');
    await settle(continuity().afterFeedLoss());
    assert.deepEqual(hub.invalidated.sort(), ['behind', 'new-epoch']);
    assert.equal(store.reads.get('no-history'), undefined, 'a channel without history has no position to read');
  });

  it('only rechecks the channels the lost feed carried when told which', async () => {
    for (const c of ['a:1', 'b:1']) {
      hub.seen.set(c, { offset: 1, epoch: 'e' });
      store.positions.set(c, { offset: 2, epoch: 'e' });
    }
    await settle(continuity().afterFeedLoss((c) => c.startsWith('a:')));
    assert.deepEqual(hub.invalidated, ['a:1']);
    assert.equal(store.reads.get('b:1'), undefined);
  });

  it('does not count a publication that reaches the feed within the grace wait as a move', async () => {
    hub.seen.set('late', { offset: 3, epoch: 'e' });
    store.positions.set('late', { offset: 5, epoch: 'e' });
    // The publication already stored arrives on the feed 100 ms later (the grace wait is 250 ms).
    setTimeout(() => hub.seen.set('late', { offset: 5, epoch: 'e' }), 100);
    await settle(continuity().afterFeedLoss());
    assert.deepEqual(hub.invalidated, []);
  });

  it('makes a channel recover whose feed stays behind the store past the grace wait', async () => {
    hub.seen.set('late', { offset: 3, epoch: 'e' });
    store.positions.set('late', { offset: 5, epoch: 'e' });
    setTimeout(() => hub.seen.set('late', { offset: 5, epoch: 'e' }), 2_000);
    await settle(continuity().afterFeedLoss());
    assert.deepEqual(hub.invalidated, ['late']);
  });

  it('retries a failing position read and leaves the channel alone when a retry shows it did not move', async () => {
    hub.seen.set('c', { offset: 5, epoch: 'e' });
    store.positions.set('c', { offset: 5, epoch: 'e' });
    store.readFailures.set('c', 2);
    await settle(continuity().afterFeedLoss());
    assert.equal(store.reads.get('c'), 3);
    assert.deepEqual(hub.invalidated, []);
  });

  it('makes the channel recover when its position cannot be read after the retries', async () => {
    hub.seen.set('c', { offset: 5, epoch: 'e' });
    store.positions.set('c', { offset: 5, epoch: 'e' });
    store.readFailures.set('c', 100);
    await settle(continuity().afterFeedLoss());
    assert.equal(store.reads.get('c'), 4, 'one read and 3 retries');
    assert.deepEqual(hub.invalidated, ['c']);
  });

  it('treats a store below what the feed showed as a rewind: rotates the epoch, then makes the subscribers recover', async () => {
    hub.seen.set('c', { offset: 7, epoch: 'e' });
    store.positions.set('c', { offset: 5, epoch: 'e' });
    await settle(continuity().afterFeedLoss());
    assert.deepEqual(store.rotations, [['c', 'e']]);
    assert.deepEqual(hub.order, ['rotate c', 'invalidate c']);
  });
});

describe('feed continuity of a rewound stream', () => {
  it('retries rotating the epoch until the store takes it, and only then makes the subscribers recover', async () => {
    store.rotateFailures = 3;
    await settle(continuity().rewound('c', 'e', { seenOffset: 7, feedOffset: 2 }));
    assert.deepEqual(store.rotations, [
      ['c', 'e'],
      ['c', 'e'],
      ['c', 'e'],
      ['c', 'e'],
    ]);
    assert.deepEqual(hub.order, ['rotate c', 'rotate c', 'rotate c', 'rotate c', 'invalidate c']);
  });

  it('gives up rotating after 21 attempts and still makes the subscribers recover', async () => {
    store.rotateFailures = 1_000;
    await settle(continuity().rewound('c', 'e', { seenOffset: 7, feedOffset: 2 }));
    assert.equal(store.rotations.length, 21);
    assert.deepEqual(hub.invalidated, ['c']);
  });
});
