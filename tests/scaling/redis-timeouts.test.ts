// No wait on Redis without a deadline: a Herald node (real process) on a Redis of the test's own, frozen with
// SIGSTOP while raw protocol clients subscribe. A subscribe answers error 100 within HERALD_REDIS_TIMEOUT, the
// connection's next command is not held behind it, /ready turns 503 about a second into the freeze, and a SUBSCRIBE
// that Redis applies after it timed out leaves the node's feed subscriptions exactly what its clients need.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { API_KEY, Cluster, token, type HeraldNode } from './support/nodes.js';
import { startTestRedis, type TestRedis } from './support/redis-server.js';
import { sleep, waitFor } from './support/util.js';

/** HERALD_REDIS_TIMEOUT of the node: longer than the 1 s health deadline, so the two can be told apart. */
const REDIS_TIMEOUT_MS = 3000;
/** What a reply may take beyond HERALD_REDIS_TIMEOUT on a busy machine (a bound, not a measurement). */
const MARGIN_MS = 2000;

interface Reply {
  id: number;
  error?: { code: number; message: string; temporary?: boolean };
  [method: string]: unknown;
}

/** A client speaking the Centrifugo JSON protocol directly: replies by id, pushes in order. */
class RawClient {
  private nextId = 0;
  private readonly replies = new Map<number, Reply>();
  readonly pushes: any[] = [];
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      for (const line of String(data).split('\n')) {
        if (line.trim() === '') continue;
        const msg = JSON.parse(line);
        if (typeof msg.id === 'number' && msg.id > 0) this.replies.set(msg.id, msg);
        else if (msg.push) this.pushes.push(msg.push);
        else ws.send('{}'); // a server ping
      }
    });
  }

  static async open(node: HeraldNode, user: string): Promise<RawClient> {
    const ws = new WebSocket(node.wsUrl);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const c = new RawClient(ws);
    const r = await c.call({ connect: { token: await token(user), name: 'raw' } }, 5000);
    assert.equal(r.error, undefined, `connect of ${user}: ${JSON.stringify(r.error)}`);
    return c;
  }

  send(command: Record<string, unknown>): number {
    const id = ++this.nextId;
    this.ws.send(JSON.stringify({ id, ...command }));
    return id;
  }

  /** The reply to command `id`; rejects when none came within `withinMs`. */
  async reply(id: number, withinMs: number): Promise<Reply> {
    return waitFor(() => this.replies.get(id), `the reply to command ${id}`, withinMs);
  }

  async call(command: Record<string, unknown>, withinMs: number): Promise<Reply> {
    return this.reply(this.send(command), withinMs);
  }

  close(): void {
    this.ws.terminate();
  }
}

describe('Redis waits have deadlines', { timeout: 120_000 }, () => {
  let redis: TestRedis;
  let cluster: Cluster;
  let node: HeraldNode;
  const prefix = `herald-timeouts-${process.pid}`;
  const clients: RawClient[] = [];

  /** How many connections are subscribed to the channel's feed on Redis (the node's view is one of them). */
  async function feedSubscribers(channel: string): Promise<number> {
    const r = (await redis.command('PUBSUB', 'NUMSUB', `${prefix}.pub.{${channel}}`)) as [string, number];
    return Number(r[1]);
  }

  async function client(user: string): Promise<RawClient> {
    const c = await RawClient.open(node, user);
    clients.push(c);
    return c;
  }

  /** Thaws Redis and waits until the node is ready again. */
  async function thaw(): Promise<void> {
    redis.thaw();
    await waitFor(async () => (await node.ready()) === 200, 'the node ready again after SIGCONT', 15_000);
  }

  before(async () => {
    redis = await startTestRedis();
    cluster = new Cluster(redis.url, prefix, { HERALD_REDIS_TIMEOUT: `${REDIS_TIMEOUT_MS}ms` });
    node = await cluster.start('t');
  });
  after(async () => {
    for (const c of clients) c.close();
    redis?.thaw();
    await cluster?.stop();
    await redis?.stop();
  });

  test('/ready turns 503 about one second into a Redis freeze, well before HERALD_REDIS_TIMEOUT', async () => {
    assert.equal(await node.ready(), 200);
    const frozenAt = Date.now();
    redis.freeze();
    try {
      await waitFor(async () => (await node.ready()) === 503, '/ready 503 while Redis is frozen', 10_000);
      const tookMs = Date.now() - frozenAt;
      assert.ok(
        tookMs < 2500,
        `/ready turned 503 after ${tookMs} ms (documented: about 1 s; HERALD_REDIS_TIMEOUT is ${REDIS_TIMEOUT_MS} ms)`,
      );
      // The reasons are for the operator: /ready shows them with the API key.
      const res = await fetch(`http://127.0.0.1:${node.port}/ready`, { headers: { 'x-api-key': API_KEY } });
      const body = (await res.json()) as { checks: { engine: string } };
      assert.match(body.checks.engine, /not answering a PING within 1000 ms/);
    } finally {
      await thaw();
    }
  });

  test('a subscribe to a channel new to the node during a Redis freeze answers error 100 within HERALD_REDIS_TIMEOUT, and the next command of that connection is answered while Redis is still frozen', async () => {
    const c = await client('alice');
    redis.freeze();
    try {
      const sentAt = Date.now();
      const sub = c.send({ subscribe: { channel: 'room:frozen-new' } });
      const ping = c.send({ ping: {} });
      const r = await c.reply(sub, REDIS_TIMEOUT_MS + MARGIN_MS);
      const tookMs = Date.now() - sentAt;
      assert.equal(r.error?.code, 100, `subscribe answered ${JSON.stringify(r)}`);
      assert.equal(r.error?.temporary, true);
      assert.match(
        r.error!.message,
        /redis engine: subscribe failed \(Redis did not answer within HERALD_REDIS_TIMEOUT\)/,
      );
      assert.ok(
        tookMs >= REDIS_TIMEOUT_MS - 100,
        `the subscribe waited for HERALD_REDIS_TIMEOUT, not less (${tookMs} ms)`,
      );
      const p = await c.reply(ping, MARGIN_MS);
      assert.equal(p.error, undefined);
      assert.ok(Date.now() - sentAt < REDIS_TIMEOUT_MS + MARGIN_MS, 'both answered while Redis was still frozen');
    } finally {
      await thaw();
    }
  });

  test('SUBSCRIBEs that Redis applies after they timed out leave the node unsubscribed from that feed; a new subscribe then works and delivers', async () => {
    const [a, b] = [await client('bob'), await client('carol')];
    const ch = 'room:late';
    redis.freeze();
    try {
      const first = a.send({ subscribe: { channel: ch } });
      await sleep(300);
      const second = b.send({ subscribe: { channel: ch } });
      assert.equal((await a.reply(first, REDIS_TIMEOUT_MS + MARGIN_MS)).error?.code, 100);
      assert.equal((await b.reply(second, REDIS_TIMEOUT_MS + MARGIN_MS)).error?.code, 100);
    } finally {
      await thaw();
    }
    // Both SUBSCRIBEs reached Redis before the freeze ended and were applied then; nobody on the node wants the feed.
    await waitFor(async () => (await feedSubscribers(ch)) === 0, 'the node to drop the feed subscribed late', 10_000);
    await sleep(500);
    assert.equal(await feedSubscribers(ch), 0, 'the node stays unsubscribed from a feed it does not serve');

    const again = await a.call({ subscribe: { channel: ch } }, 5000);
    assert.equal(again.error, undefined, `the subscribe after the freeze: ${JSON.stringify(again.error)}`);
    assert.equal(await feedSubscribers(ch), 1, 'the node is subscribed to the feed once');
    const published = await node.api('publish', { channel: ch, data: { id: 'after-freeze' } });
    assert.equal(published.status, 200);
    await waitFor(
      () => a.pushes.some((p) => p.channel === ch && p.pub?.data?.id === 'after-freeze'),
      'the publication after the freeze',
    );
    assert.equal((await a.call({ unsubscribe: { channel: ch } }, 5000)).error, undefined);
    await waitFor(async () => (await feedSubscribers(ch)) === 0, 'the feed dropped after the last unsubscribe', 10_000);
  });

  test('a subscribe that succeeds after an earlier SUBSCRIBE of the same feed timed out keeps the feed when Redis applies the late one', async () => {
    const [a, b] = [await client('dave'), await client('erin')];
    const ch = 'room:late-then-wanted';
    redis.freeze();
    let second: number;
    try {
      const first = a.send({ subscribe: { channel: ch } });
      assert.equal((await a.reply(first, REDIS_TIMEOUT_MS + MARGIN_MS)).error?.code, 100);
      // Sent while Redis is still frozen, after the first timed out: both SUBSCRIBEs wait in Redis's input buffer.
      second = b.send({ subscribe: { channel: ch } });
      await sleep(500);
    } finally {
      redis.thaw();
    }
    const r = await b.reply(second, REDIS_TIMEOUT_MS + MARGIN_MS);
    assert.equal(r.error, undefined, `the second subscribe, answered after the thaw: ${JSON.stringify(r.error)}`);
    await waitFor(async () => (await node.ready()) === 200, 'the node ready again', 15_000);
    await sleep(500);
    assert.equal(await feedSubscribers(ch), 1, 'the node kept the feed its subscriber needs');
    const published = await node.api('publish', { channel: ch, data: { id: 'kept' } });
    assert.equal(published.status, 200);
    await waitFor(
      () => b.pushes.some((p) => p.channel === ch && p.pub?.data?.id === 'kept'),
      'the publication on the kept feed',
    );
  });
});
