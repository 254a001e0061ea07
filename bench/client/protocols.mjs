// Lean clients for the three wire protocols (not the SDKs): just enough to authenticate, subscribe, publish and
// count publications, so the load client stays cheap. Each `open` resolves once the subscription is confirmed.
import { LeanWebSocket } from './lean-ws.mjs';

const OPEN_TIMEOUT_MS = 30_000;

/** Counts publications in one incoming message and feeds latency samples (payload field "t") to `sample`. */
function scanTimes(text, sample) {
  let i = text.indexOf('"t":');
  while (i >= 0) {
    const end = text.indexOf(',', i);
    sample(Number(text.slice(i + 4, end)));
    i = text.indexOf('"t":', end);
  }
}

export const protocols = {
  // Herald: Centrifugo JSON protocol. connect + subscribe in one frame, as the centrifuge SDK does.
  herald: {
    hello(token, channel) {
      const c = `{"id":1,"connect":{"token":${JSON.stringify(token)},"name":"bench"}}`;
      return channel ? `${c}\n{"id":2,"subscribe":{"channel":${JSON.stringify(channel)}}}` : c;
    },
    /** 'ok' when the handshake is done, an Error when refused, undefined to keep waiting. */
    handshake(ws, text, channel) {
      const want = channel ? '{"id":2,' : '{"id":1,';
      if (text.includes('"error"') || text.includes('"disconnect"'))
        return new Error(`herald refused: ${text.slice(0, 200)}`);
      return text.includes(want) ? 'ok' : undefined;
    },
    onMessage(ws, text, st) {
      if (text === '{}') {
        ws.send('{}');
        return;
      }
      let n = 0;
      let i = text.indexOf('"pub":');
      while (i >= 0) {
        n++;
        i = text.indexOf('"pub":', i + 6);
      }
      if (n > 0) {
        if (st.sample) scanTimes(text, st.sample);
        st.delivered += n;
        if (st.after) st.after();
      }
    },
    publish(ws, id, channel, data) {
      ws.send(`{"id":${id},"publish":{"channel":${JSON.stringify(channel)},"data":${data}}}`);
    },
  },

  // Herald with a connect proxy: no token; the session cookie travels as an emulated header for the app to read.
  'herald-proxy': {
    hello(token, channel) {
      const c = `{"id":1,"connect":{"headers":{"Cookie":${JSON.stringify(`sid=${token.slice(-24)}`)}},"name":"bench"}}`;
      return channel ? `${c}\n{"id":2,"subscribe":{"channel":${JSON.stringify(channel)}}}` : c;
    },
    handshake(...args) {
      return protocols.herald.handshake(...args);
    },
    onMessage(...args) {
      protocols.herald.onMessage(...args);
    },
    publish(...args) {
      protocols.herald.publish(...args);
    },
  },

  // ws-raw: {"token","sub"} -> {"ok":1}; publications arrive as {"ch","data"}.
  raw: {
    hello(token, channel) {
      return JSON.stringify(channel ? { token, sub: channel } : { token });
    },
    handshake(ws, text) {
      return text === '{"ok":1}' ? 'ok' : undefined;
    },
    onMessage(ws, text, st) {
      if (text.startsWith('{"ch"')) {
        if (st.sample) scanTimes(text, st.sample);
        st.delivered++;
        if (st.after) st.after();
      }
    },
    publish(ws, id, channel, data) {
      ws.send(`{"pub":${JSON.stringify(channel)},"data":${data}}`);
    },
  },

  // Socket.IO v4 over Engine.IO v4, WebSocket only: open "0{...}", connect "40{auth}", ack'ed "sub" event.
  sio: {
    hello() {
      return undefined; // the server speaks first (Engine.IO open packet)
    },
    handshake(ws, text, channel, token) {
      if (text.startsWith('0{')) {
        ws.send(`40${JSON.stringify({ token })}`);
        return undefined;
      }
      if (text.startsWith('44')) return new Error(`socket.io refused: ${text.slice(0, 200)}`);
      if (text.startsWith('40')) {
        if (!channel) return 'ok';
        ws.send(`420${JSON.stringify(['sub', channel])}`);
        return undefined;
      }
      if (text.startsWith('430')) return 'ok';
      if (text === '2') ws.send('3');
      return undefined;
    },
    onMessage(ws, text, st) {
      if (text.startsWith('42')) {
        if (st.sample) scanTimes(text, st.sample);
        st.delivered++;
        if (st.after) st.after();
      } else if (text === '2') {
        ws.send('3');
      }
    },
    publish(ws, id, channel, data) {
      ws.send(`42["pub",${JSON.stringify(channel)},${data}]`);
    },
  },
};

/** Opens one connection and completes its handshake (auth + optional subscribe); then counts into `st`. */
export function open(protoName, url, token, channel, st) {
  const p = protocols[protoName];
  return new Promise((resolve, reject) => {
    let done = false;
    let ws;
    const fail = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error('handshake timeout')), OPEN_TIMEOUT_MS);
    let onText = (text) => {
      const r = p.handshake(ws, text, channel, token);
      if (r === undefined) return;
      if (r instanceof Error) return fail(r);
      done = true;
      clearTimeout(timer);
      onText = (t) => p.onMessage(ws, t, st);
      resolve(ws);
    };
    ws = new LeanWebSocket(url, {
      onOpen() {
        const hello = p.hello(token, channel);
        if (hello !== undefined) ws.send(hello);
      },
      onMessage: (text) => onText(text),
      onClose(code, reason) {
        if (!done) fail(new Error(`closed ${code} ${reason}`));
        else st.closed++;
      },
      onError(err) {
        if (done) console.error(`bench client: ${err.message}`);
        fail(err);
      },
    });
  });
}
