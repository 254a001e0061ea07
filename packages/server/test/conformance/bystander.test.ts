/**
 * Issue #12 item 1: a client subscribing with recovery must never move what the live feed delivers to the clients
 * already on the channel. On Redis the history read and the feed travel on two connections with no order between
 * them, so a joiner's history reply often overtakes the feed; the position it read is its own, not the channel's.
 *
 * A bystander stays subscribed while 1,500 publications go through the HTTP API (32 in flight) and 40 clients keep
 * joining the channel with recovery from a recent offset and leaving again. The bystander must receive every
 * acknowledged offset exactly once, in order, without being told to recover; every joiner must receive exactly the
 * publications after the offset it recovered from (reply, then live), once each, contiguous.
 */
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { engineNames } from '../support/engines.js';
import { api, mintToken, startHerald, waitFor, type TestServer } from '../support/herald.js';

const PUBLICATIONS = 1500;
const IN_FLIGHT = 32;
const JOINERS = 40;
/** Bounds on each joiner's loop: it stops when publishing is done, or after this many subscriptions. */
const MAX_CYCLES_PER_JOINER = 80;

const config = {
  channel: {
    namespaces: {
      feed: { allow_subscribe_for_client: true, history_size: 4000, history_ttl_ms: 600_000, force_recovery: true },
    },
  },
};

/** A raw protocol client that logs every reply and push in arrival order (pings are answered). */
class LoggingClient {
  readonly log: any[] = [];
  private nextId = 1;
  private readonly waiters = new Map<number, (m: any) => void>();
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      for (const line of data.toString().split('\n')) {
        if (!line.trim()) continue;
        const m = JSON.parse(line);
        if (m.id === undefined && m.push === undefined && m.error === undefined) {
          ws.send('{}');
          continue;
        }
        this.log.push(m);
        if (typeof m.id === 'number') this.waiters.get(m.id)?.(m);
      }
    });
    ws.on('error', () => {});
  }

  static async open(s: TestServer, user: string): Promise<LoggingClient> {
    const ws = new WebSocket(s.wsUrl);
    await once(ws, 'open');
    const c = new LoggingClient(ws);
    const r = await c.call({ connect: { token: await mintToken({ sub: user }) } });
    assert.ok(r.connect, `connect failed: ${JSON.stringify(r)}`);
    return c;
  }

  call(command: Record<string, unknown>): Promise<any> {
    return this.send(command).reply;
  }

  /** Sends a command; its id and its reply. */
  send(command: Record<string, unknown>): { id: number; reply: Promise<any> } {
    const id = this.nextId++;
    const reply = new Promise<any>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(command)} within 10 s`)), 10_000);
      this.waiters.set(id, (m) => {
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(m);
      });
    });
    this.ws.send(JSON.stringify({ id, ...command }));
    return { id, reply };
  }

  close(): void {
    this.ws.terminate();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Describes what is wrong with a received offset sequence against the expected contiguous one (undefined: none). */
function sequenceProblem(got: number[], from: number, to: number): string | undefined {
  const expected = Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
  if (got.length === expected.length && got.every((o, i) => o === expected[i])) return undefined;
  const seen = new Set(got);
  const missing = expected.filter((o) => !seen.has(o));
  const duplicated = got.filter((o, i) => got.indexOf(o) !== i);
  const outOfOrder = got.filter((o, i) => i > 0 && o <= got[i - 1]!).length;
  return (
    `expected offsets ${from}..${to} (${expected.length}), got ${got.length}: ${missing.length} missing ` +
    `(first ${missing.slice(0, 10).join(',')}), ${duplicated.length} duplicated (${duplicated.slice(0, 10).join(',')}), ` +
    `${outOfOrder} out of order`
  );
}

for (const engineName of engineNames) {
  describe(
    `a bystander while clients join with recovery under a publish stream (${engineName} engine)`,
    { timeout: 180_000 },
    () => {
      let s: TestServer;
      const channel = `feed:bystander-${process.pid}-${Date.now().toString(36)}`;
      let bystander: LoggingClient;
      const joiners: LoggingClient[] = [];
      /** offset -> the publication index its acknowledgement carried. */
      const acked = new Map<number, number>();
      let epoch = '';
      let startOffset = 0;
      /** Per joiner: each subscription's recovery offset and the subscribe/unsubscribe reply ids bounding it. */
      const periods: { joiner: number; from: number; subscribeId: number; unsubscribeId: number }[] = [];

      before(async () => {
        s = await startHerald({ engineName, config });
        bystander = await LoggingClient.open(s, 'bystander');
        const r = await bystander.call({ subscribe: { channel } });
        assert.ok(r.subscribe, `bystander subscribe failed: ${JSON.stringify(r)}`);
        epoch = r.subscribe.epoch;
        startOffset = r.subscribe.offset;
        for (let i = 0; i < JOINERS; i++) joiners.push(await LoggingClient.open(s, `joiner-${i}`));

        let next = 0;
        let lastAcked = startOffset;
        let publishing = true;
        const publisher = async () => {
          while (next < PUBLICATIONS) {
            const i = next++;
            const res = await api(s, 'publish', { channel, data: { i } });
            assert.equal(res.status, 200, `publish ${i}: ${JSON.stringify(res.json)}`);
            assert.equal(res.json.result?.epoch, epoch, 'the channel keeps its epoch');
            acked.set(res.json.result.offset, i);
            lastAcked = Math.max(lastAcked, res.json.result.offset);
          }
        };
        const joiner = async (j: number) => {
          const c = joiners[j]!;
          for (let cycle = 0; publishing && cycle < MAX_CYCLES_PER_JOINER; cycle++) {
            // Recover from a recent offset: the history read returns publications the feed may not have brought yet.
            const from = Math.max(startOffset, lastAcked - Math.floor(Math.random() * 40));
            const { id: subscribeId, reply } = c.send({ subscribe: { channel, recover: true, offset: from, epoch } });
            const r = await reply;
            assert.ok(r.subscribe, `joiner ${j} subscribe failed: ${JSON.stringify(r)}`);
            await sleep(20 + Math.floor(Math.random() * 40));
            const unsub = c.send({ unsubscribe: { channel } });
            await unsub.reply;
            const unsubscribeId = unsub.id;
            periods.push({ joiner: j, from, subscribeId, unsubscribeId });
          }
        };
        const joining = Promise.all(joiners.map((_, j) => joiner(j)));
        joining.catch(() => {}); // awaited below, after the publishers: its failure is reported there
        await Promise.all(Array.from({ length: IN_FLIGHT }, publisher));
        publishing = false;
        await joining;
        assert.equal(acked.size, PUBLICATIONS, 'every publication was acknowledged with its own offset');
        const last = startOffset + PUBLICATIONS;
        // Generous bound for the feed to deliver the tail; what arrived is judged below.
        await waitFor(
          () => bystander.log.some((m) => m.push?.pub?.offset === last),
          'the bystander to receive the last offset',
          15_000,
        ).catch(() => {});
      });

      after(async () => {
        bystander?.close();
        for (const c of joiners) c.close();
        await s?.close();
      });

      test('the subscriber already on the channel receives every acknowledged publication exactly once, in order, and is never told to recover', () => {
        const pushes = bystander.log.filter((m) => m.push?.channel === channel);
        const unsubscribes = pushes.filter((m) => m.push.unsubscribe);
        assert.deepEqual(unsubscribes, [], 'the bystander is never unsubscribed');
        const pubs = pushes.filter((m) => m.push.pub).map((m) => m.push.pub);
        const problem = sequenceProblem(
          pubs.map((p) => p.offset),
          startOffset + 1,
          startOffset + PUBLICATIONS,
        );
        assert.equal(problem, undefined, problem);
        for (const p of pubs)
          assert.equal(p.data.i, acked.get(p.offset), `offset ${p.offset} carries the acknowledged publication`);
      });

      test('every joiner receives exactly the publications after the offset it recovered from, reply then live, once each and contiguous', () => {
        assert.ok(periods.length >= JOINERS, `each joiner subscribed at least once (${periods.length} subscriptions)`);
        const problems: string[] = [];
        for (const p of periods) {
          const log = joiners[p.joiner]!.log;
          const start = log.findIndex((m) => m.id === p.subscribeId);
          const end = log.findIndex((m) => m.id === p.unsubscribeId);
          const reply = log[start].subscribe;
          if (reply.recovered !== true)
            problems.push(`joiner ${p.joiner} from ${p.from}: recovered ${reply.recovered}`);
          const offsets: number[] = (reply.publications ?? []).map((x: { offset: number }) => x.offset);
          for (const m of log.slice(start + 1, end)) {
            if (m.push?.channel !== channel) continue;
            if (m.push.unsubscribe)
              problems.push(`joiner ${p.joiner} from ${p.from}: unsubscribed ${JSON.stringify(m.push.unsubscribe)}`);
            if (m.push.pub) offsets.push(m.push.pub.offset);
          }
          const to = Math.max(p.from, reply.offset, ...offsets);
          const problem = sequenceProblem(offsets, p.from + 1, to);
          if (problem) problems.push(`joiner ${p.joiner} from ${p.from}: ${problem}`);
        }
        assert.deepEqual(problems, []);
      });
    },
  );
}
