import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EndpointError, probeUrlOf, resolveEndpoint } from '../src/endpoint.js';

const page = { protocol: 'http:', host: 'localhost:3000' };

test('an explicit url option wins over NEXT_PUBLIC_HERALD_URL and the page', () => {
  const e = resolveEndpoint({ url: 'ws://rt.example:3002/ws', envUrl: 'ws://env.example/ws', location: page });
  assert.deepEqual(e, { url: 'ws://rt.example:3002/ws', source: 'option' });
});

test('NEXT_PUBLIC_HERALD_URL is used when there is no url option', () => {
  const e = resolveEndpoint({ envUrl: 'wss://rt.example/ws', location: page });
  assert.deepEqual(e, { url: 'wss://rt.example/ws', source: 'env' });
});

test('without either, the page gets same-origin /ws on its own host and port, never another port', () => {
  const e = resolveEndpoint({ envUrl: undefined, location: page });
  assert.deepEqual(e, { url: 'ws://localhost:3000/ws', source: 'same-origin' });
});

test('an https page gets wss: for the same-origin endpoint', () => {
  const e = resolveEndpoint({ envUrl: undefined, location: { protocol: 'https:', host: 'app.example' } });
  assert.equal(e.url, 'wss://app.example/ws');
});

test('http and https URLs are turned into ws and wss, and a path resolves against the page', () => {
  assert.equal(resolveEndpoint({ url: 'http://127.0.0.1:3002/ws', location: undefined }).url, 'ws://127.0.0.1:3002/ws');
  assert.equal(resolveEndpoint({ url: 'https://rt.example/ws', location: undefined }).url, 'wss://rt.example/ws');
  assert.equal(resolveEndpoint({ url: '/realtime', location: page }).url, 'ws://localhost:3000/realtime');
});

test('outside a page with no url and no variable, resolution fails with a message naming both ways to fix it', () => {
  assert.throws(
    () => resolveEndpoint({ envUrl: undefined, location: undefined }),
    (err: unknown) => {
      assert.ok(err instanceof EndpointError);
      assert.match(err.message, /url/);
      assert.match(err.message, /NEXT_PUBLIC_HERALD_URL/);
      return true;
    },
  );
});

test('a url with another scheme is refused with the schemes it accepts', () => {
  assert.throws(() => resolveEndpoint({ url: 'ftp://x/ws', location: page }), /ws:, wss:, http: or https:/);
});

test('the probe URL is the same endpoint over http or https', () => {
  assert.equal(probeUrlOf('ws://localhost:3000/ws'), 'http://localhost:3000/ws');
  assert.equal(probeUrlOf('wss://app.example/ws?x=1'), 'https://app.example/ws?x=1');
});
