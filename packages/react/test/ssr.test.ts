import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createElement } from 'react';
import { renderToString } from 'react-dom/server';
import { HeraldProvider, useConnectionState, usePresence, useSubscription } from '../src/index.js';

function Room() {
  const state = useConnectionState();
  const members = usePresence('chat:lobby');
  useSubscription('chat:lobby', () => {});
  return createElement('p', { 'data-testid': 'connection-state' }, `${state}:${members.length}`);
}

test('rendering on the server connects nothing, fetches no token and shows "connecting"', () => {
  const g = globalThis as Record<string, unknown>;
  const saved = { WebSocket: g.WebSocket, fetch: g.fetch };
  const touched: string[] = [];
  g.WebSocket = class {
    constructor() {
      touched.push('WebSocket');
    }
  };
  g.fetch = () => {
    touched.push('fetch');
    return Promise.reject(new Error('no fetch on the server'));
  };
  try {
    const html = renderToString(createElement(HeraldProvider, { url: 'ws://127.0.0.1:1/ws' }, createElement(Room)));
    assert.match(html, /connecting:0/);
    assert.deepEqual(touched, []);
  } finally {
    g.WebSocket = saved.WebSocket;
    g.fetch = saved.fetch;
  }
});

test('a hook outside the provider says where it must be used', () => {
  assert.throws(() => renderToString(createElement(Room)), /must be used inside <HeraldProvider>/);
});
