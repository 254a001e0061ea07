// A browser page tails channels with nothing but its native EventSource on /connection/uni_sse (Chromium, driven by
// playwright-core; Debian's chromium, installed by scripts/provision.mjs for tests/uni).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { api, mintToken, startHerald, type TestServer } from '../../packages/server/test/support/herald.js';
import { launchChromium, until } from '../e2e/support/browser.js';

let s: TestServer;
let browser: Browser;
let page: Page;

before(async () => {
  s = await startHerald({
    env: { HERALD_UNI_SSE: 'true' },
    fileConfig: { channel: { without_namespace: { history_size: 50, history_ttl: '300s', force_recovery: true } } },
  });
  browser = await launchChromium();
  page = await browser.newPage();
  // Any page of Herald's origin: the EventSource is then same-origin.
  await page.goto(`${s.httpUrl}/health`);
});
after(async () => {
  await browser?.close();
  await s?.close();
});

/** Opens an EventSource in the page; its messages are collected, parsed, in window.__uni[name]. */
async function openEventSource(name: string, connect: unknown): Promise<void> {
  await page.evaluate(
    ({ name, connect }) => {
      const w = window as unknown as { __uni: Record<string, unknown[]>; __es: Record<string, EventSource> };
      w.__uni ??= {};
      w.__es ??= {};
      w.__uni[name] = [];
      const url = new URL('/connection/uni_sse', location.origin);
      url.searchParams.set('cf_connect', JSON.stringify(connect));
      const es = new EventSource(url);
      es.onmessage = (e) => w.__uni[name]!.push(JSON.parse(e.data as string));
      w.__es[name] = es;
    },
    { name, connect },
  );
}

function messages(name: string): Promise<any[]> {
  return page.evaluate((name) => (window as unknown as { __uni: Record<string, unknown[]> }).__uni[name] ?? [], name);
}

async function message(name: string, pred: (m: any) => boolean, what: string): Promise<any> {
  return until(what, async () => (await messages(name)).find(pred));
}

test("Chromium's EventSource receives the connect push and publications, then recovers what it missed after a reconnect", async () => {
  const token = await mintToken({ sub: 'browser', channels: ['prices'] });
  await openEventSource('a', { token });
  const connect = await message('a', (m) => m.connect, 'the connect push in the page');
  const position = connect.connect.subs.prices;
  assert.equal(position.recoverable, true);

  assert.equal((await api(s, 'publish', { channel: 'prices', data: { eur: 1.08 } })).status, 200);
  const pub = await message('a', (m) => m.pub, 'the publication in the page');
  assert.deepEqual(pub, { channel: 'prices', pub: { data: { eur: 1.08 }, offset: position.offset + 1 } });

  await page.evaluate(() => (window as unknown as { __es: Record<string, EventSource> }).__es.a!.close());
  await until('the server to see the EventSource go', async () => s.herald.connectionCount === 0);
  await api(s, 'publish', { channel: 'prices', data: { eur: 1.09 } });
  await api(s, 'publish', { channel: 'prices', data: { eur: 1.1 } });

  await openEventSource('b', {
    token,
    subs: { prices: { recover: true, offset: pub.pub.offset, epoch: position.epoch } },
  });
  const again = (await message('b', (m) => m.connect, 'the second connect push')).connect.subs.prices;
  assert.equal(again.recovered, true);
  assert.deepEqual(
    again.publications.map((p: any) => p.data),
    [{ eur: 1.09 }, { eur: 1.1 }],
  );
});
