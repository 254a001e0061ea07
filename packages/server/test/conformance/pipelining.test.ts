// A client that pipelines commands faster than Herald works through them (a backend publishing a burst with the
// SDK) is slowed down, not cut off: past its queue of commands Herald stops reading the connection and resumes when
// the queue has drained. Only a client over HERALD_COMMAND_RATE is refused (111, then 3013).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { engineNames } from '../support/engines.js';
import { RawClient, mintToken, startHerald, waitFor, type TestServer } from '../support/herald.js';
import { MAX_WAITING_REQUESTS } from '../../src/transport/emulation.js';

const config = { channel: { withoutNamespace: { allow_publish_for_client: true } } };

/** A promise the test resolves: the onPublish hook holds the first publish on it, so the queue cannot drain. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

/** Starts Herald whose onPublish hook records `data.n` in order and holds the first publish until the gate opens. */
async function startGated(
  env: Record<string, string>,
): Promise<{ s: TestServer; seen: number[]; g: ReturnType<typeof gate> }> {
  const seen: number[] = [];
  const g = gate();
  const s = await startHerald({
    env,
    config,
    hooks: {
      onPublish: async ({ data }) => {
        seen.push((data as { n: number }).n);
        if (seen.length === 1) await g.wait;
      },
    },
  });
  return { s, seen, g };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('pipelined commands', { timeout: 120_000 }, () => {
  test('20,000 publishes pipelined on one WebSocket with the rate limit off all succeed in order, and Herald stops reading while its queue is full', async () => {
    const { s, seen, g } = await startGated({ HERALD_COMMAND_RATE: '0' });
    try {
      const raw = await RawClient.open(s.wsUrl);
      raw.send({ id: 1, connect: { token: await mintToken({ sub: 'backend' }) } });
      await raw.reply(1);
      const count = 20_000;
      const pad = 'x'.repeat(2000);
      const frames = Array.from({ length: count }, (_, n) =>
        JSON.stringify({ id: n + 2, publish: { channel: 'burst', data: { n, pad } } }),
      );
      const total = frames.reduce((sum, f) => sum + f.length + 8, 0);
      // Written in batches of 100 frames (~200 KB), each once the previous one is in the kernel; `written` counts the
      // bytes the kernel took (write callbacks), so it bounds what Herald read. The first publish is held by the hook:
      // Herald's queue cannot drain. Writing stops at the first batch the kernel does not take within 1 s (a full
      // socket); at most 200 batches.
      let written = 0;
      let next = 0;
      const batch = (): Promise<void> => {
        const part = frames.slice(next, next + 100);
        next += part.length;
        let left = part.length;
        return new Promise((resolve) => {
          for (const f of part) {
            raw.ws.send(f, () => {
              written += f.length + 8;
              if (--left === 0) resolve();
            });
          }
        });
      };
      await batch();
      await waitFor(() => seen.length === 1, 'the first publish to reach the hook');
      while (next < count) {
        const stalled = await Promise.race([batch().then(() => false), sleep(1000).then(() => true)]);
        if (stalled) break;
      }
      // ~40 MB to write; Herald holds one queue of commands (256 here) plus what one read brings, the kernel's socket
      // buffers a few MB more. Reading without pause takes all 40 MB.
      assert.ok(next < count, 'writing stalled before the last frame');
      assert.ok(
        written < 16 * 1024 * 1024,
        `the kernel and Herald took ${written} of ${total} bytes while the queue could not drain`,
      );
      assert.equal(raw.closeCode, undefined, 'the connection stays open while its queue is full');
      g.open();
      for (const f of frames.slice(next)) raw.ws.send(f);
      await waitFor(
        () => raw.messages.length >= count + 1 || raw.closeCode !== undefined,
        'every publish reply',
        60_000,
      );
      assert.equal(raw.closeCode, undefined, 'the connection was not closed');
      const replies = raw.messages.slice(1);
      assert.equal(replies.length, count);
      replies.forEach((m, i) => {
        assert.equal(m.id, i + 2, `reply ${i} is for command ${i + 2}`);
        assert.deepEqual(m.publish, {}, `command ${m.id} succeeded (${JSON.stringify(m.error)})`);
      });
      assert.deepEqual(
        seen,
        Array.from({ length: count }, (_, n) => n),
        'publications were handled in the order sent',
      );
      raw.close();
    } finally {
      g.open();
      await s.close();
    }
  });

  test('with the rate limit on, 2,000 publishes pipelined on one WebSocket still get 111 and then close 3013', async () => {
    const s = await startHerald({ env: { HERALD_COMMAND_RATE: '50' }, config });
    try {
      const raw = await RawClient.open(s.wsUrl);
      raw.send({ id: 1, connect: { token: await mintToken({ sub: 'backend' }) } });
      await raw.reply(1);
      for (let n = 0; n < 2000; n++)
        raw.ws.send(JSON.stringify({ id: n + 2, publish: { channel: 'burst', data: { n } } }));
      assert.equal((await raw.closed(10_000)).code, 3013);
      assert.deepEqual(
        raw.messages.find((m) => m.id === 2)?.publish,
        {},
        'the first publish (within the burst) succeeded',
      );
      assert.ok(
        raw.messages.some((m) => m.error?.code === 111),
        'commands over the rate were answered 111 before the close',
      );
      const ok = raw.messages.filter((m) => m.publish).length;
      assert.ok(ok < 1000, `only the burst (2 x 50, refilled at 50/s) succeeded, not ${ok} of 2,000`);
    } finally {
      await s.close();
    }
  });

  test('HTTP-streaming with the rate limit off: a POST /emulation that arrives while the queue is full is answered once it drains, and every command succeeds in order', async () => {
    const { s, seen, g } = await startGated({ HERALD_COMMAND_RATE: '0', HERALD_HTTP_STREAM: 'true' });
    const abort = new AbortController();
    try {
      const body = JSON.stringify({ id: 1, connect: { token: await mintToken({ sub: 'backend' }) } });
      const res = await fetch(`${s.httpUrl}/connection/http_stream`, { method: 'POST', body, signal: abort.signal });
      assert.equal(res.status, 200);
      const messages: any[] = [];
      let ended = false;
      void (async () => {
        const decoder = new TextDecoder();
        let buf = '';
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            buf += decoder.decode(chunk, { stream: true });
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl);
              buf = buf.slice(nl + 1);
              if (line.trim()) messages.push(JSON.parse(line));
            }
          }
        } catch {
          /* aborted at the end of the test */
        }
        ended = true;
      })();
      const connect = await waitFor(() => messages.find((m) => m.id === 1), 'the connect reply');
      const { session, node } = connect.connect as { session: string; node: string };
      const perPost = 300;
      const post = (first: number) => {
        const data = Array.from({ length: perPost }, (_, i) =>
          JSON.stringify({ id: first + i + 2, publish: { channel: 'burst', data: { n: first + i } } }),
        ).join('\n');
        return fetch(`${s.httpUrl}/emulation`, { method: 'POST', body: JSON.stringify({ session, node, data }) });
      };
      // 300 commands in one request: past the queue of 256 at once.
      const first = await post(0);
      assert.equal(first.status, 200);
      await first.text();
      await waitFor(() => seen.length === 1, 'the first publish to reach the hook');
      let answered = false;
      const second = post(perPost).then(async (r) => {
        answered = true;
        await r.text();
        return r.status;
      });
      await sleep(500);
      assert.equal(answered, false, 'the request waits while the queue cannot drain');
      assert.equal(ended, false, 'the stream stays open');
      g.open();
      assert.equal(await second, 200);
      const count = 2 * perPost;
      await waitFor(() => messages.length >= count + 1 || ended, 'every publish reply', 30_000);
      const replies = messages.slice(1);
      assert.equal(replies.length, count);
      replies.forEach((m, i) => {
        assert.equal(m.id, i + 2, `reply ${i} is for command ${i + 2}`);
        assert.deepEqual(m.publish, {}, `command ${m.id} succeeded (${JSON.stringify(m.error ?? m.push)})`);
      });
      assert.deepEqual(
        seen,
        Array.from({ length: count }, (_, n) => n),
        'publications were handled in the order sent',
      );
    } finally {
      g.open();
      abort.abort();
      await s.close();
    }
  });

  test(`HTTP-streaming: while the queue is full a session holds at most ${MAX_WAITING_REQUESTS} waiting POST /emulation requests; more are answered 429 at once`, async () => {
    const { s, seen, g } = await startGated({ HERALD_COMMAND_RATE: '0', HERALD_HTTP_STREAM: 'true' });
    const abort = new AbortController();
    try {
      const body = JSON.stringify({ id: 1, connect: { token: await mintToken({ sub: 'backend' }) } });
      const res = await fetch(`${s.httpUrl}/connection/http_stream`, { method: 'POST', body, signal: abort.signal });
      assert.equal(res.status, 200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      const { session, node } = (JSON.parse(first.split('\n')[0]!) as { connect: { session: string; node: string } })
        .connect;
      let id = 2;
      const post = (n: number) => {
        const data = Array.from({ length: n }, () =>
          JSON.stringify({ id: id++, publish: { channel: 'burst', data: { n: id } } }),
        ).join('\n');
        return fetch(`${s.httpUrl}/emulation`, { method: 'POST', body: JSON.stringify({ session, node, data }) });
      };
      // 300 commands: the queue of 256 is full and the hook holds the first publish, so nothing drains.
      assert.equal((await post(300)).status, 200);
      await waitFor(() => seen.length === 1, 'the first publish to reach the hook');
      const extra = 8;
      const statuses: number[] = [];
      const posts = Array.from({ length: MAX_WAITING_REQUESTS + extra }, () =>
        post(1).then(async (r) => {
          await r.text();
          statuses.push(r.status);
          return r.status;
        }),
      );
      await waitFor(() => statuses.length === extra, `${extra} requests answered while the queue is full`);
      await sleep(300);
      assert.deepEqual(
        statuses,
        Array.from({ length: extra }, () => 429),
        'only the requests past the cap are answered, with 429',
      );
      g.open();
      const all = await Promise.all(posts);
      assert.equal(
        all.filter((st) => st === 200).length,
        MAX_WAITING_REQUESTS,
        'the waiting requests are let in once the queue drains',
      );
      await reader.cancel().catch(() => {});
    } finally {
      g.open();
      abort.abort();
      await s.close();
    }
  });
});

const withHistory = {
  channel: {
    withoutNamespace: {
      allow_publish_for_client: true,
      allow_history_for_client: true,
      history_size: 1000,
      history_ttl_ms: 600_000,
    },
  },
};

for (const engineName of engineNames) {
  describe(`publishes pipelined without an onPublish hook (${engineName} engine)`, { timeout: 60_000 }, () => {
    test('600 publishes to two channels, sent one frame each without waiting, are all answered and stored in the order sent', async () => {
      const s = await startHerald({ engineName, env: { HERALD_COMMAND_RATE: '0' }, config: withHistory });
      try {
        const raw = await RawClient.open(s.wsUrl);
        raw.send({ id: 1, connect: { token: await mintToken({ sub: 'backend' }) } });
        await raw.reply(1);
        const count = 300;
        for (let n = 0; n < count; n++) {
          raw.ws.send(JSON.stringify({ id: 2 * n + 10, publish: { channel: 'left', data: { n } } }));
          raw.ws.send(JSON.stringify({ id: 2 * n + 11, publish: { channel: 'right', data: { n } } }));
        }
        await waitFor(
          () => raw.messages.filter((m) => m.id >= 10 && m.publish).length === 2 * count,
          'every publish answered',
          20_000,
        );
        assert.equal(raw.messages.filter((m) => m.error).length, 0, 'no publish failed');
        for (const [i, channel] of ['left', 'right'].entries()) {
          raw.send({ id: 5 + i, history: { channel, limit: 1000 } });
          const pubs = (await raw.reply(5 + i)).history.publications as { data: { n: number }; offset: number }[];
          assert.deepEqual(
            pubs.map((p) => p.data.n),
            Array.from({ length: count }, (_, n) => n),
            `${channel}: stored in the order sent`,
          );
          assert.deepEqual(
            pubs.map((p) => p.offset),
            Array.from({ length: count }, (_, n) => n + 1),
          );
        }
        raw.close();
      } finally {
        await s.close();
      }
    });
  });
}
