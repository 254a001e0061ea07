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

// Protobuf (client.proto at centrifugal/protocol a578daf7), written by hand: varints and length-delimited fields.
function varint(n) {
  const out = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const pbString = (field, s) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(b.length)]), b]);
};
const pbMessage = (field, body) => Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(body.length)]), body]);
/** A length-delimited Command { id, <method field>: request }. */
const pbCommand = (id, field, request) => {
  const c = Buffer.concat([Buffer.from([0x08, ...varint(id)]), pbMessage(field, request)]);
  return Buffer.concat([Buffer.from(varint(c.length)), c]);
};
/** One varint at `at`: [value, next offset]. */
function readVarint(b, at) {
  let v = 0;
  let mul = 1;
  for (;;) {
    const x = b[at++];
    v += (x & 0x7f) * mul;
    if ((x & 0x80) === 0) return [v, at];
    mul *= 128;
  }
}
/** Calls `fn(id, pushIsPub, reply)` for each length-delimited Reply of a binary frame (id 0 and no fields: a ping). */
function eachReply(buf, fn) {
  let at = 0;
  while (at < buf.length) {
    const [len, start] = readVarint(buf, at);
    const end = start + len;
    let id = 0;
    let pub = false;
    let error = false;
    let p = start;
    while (p < end) {
      const [tag, q] = readVarint(buf, p);
      const wire = tag & 7;
      if (wire === 0) {
        const [v, r] = readVarint(buf, q);
        if (tag >> 3 === 1) id = v;
        p = r;
      } else {
        const [l, r] = readVarint(buf, q);
        if (tag >> 3 === 2) error = true;
        // Reply.push (4) whose Push holds pub (4): the Push's first field is channel (2), then pub.
        if (tag >> 3 === 4) {
          let k = r;
          while (k < r + l) {
            const [t2, k2] = readVarint(buf, k);
            const [l2, k3] = readVarint(buf, k2);
            if (t2 >> 3 === 4) pub = true;
            k = k3 + l2;
          }
        }
        p = r + l;
      }
    }
    fn(id, pub, error, buf.subarray(start, end));
    at = end;
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

  // Herald in the protobuf encoding (`centrifuge-protobuf`): the same commands as `herald`, binary frames.
  'herald-protobuf': {
    subprotocol: 'centrifuge-protobuf',
    hello(token, channel) {
      const connect = pbCommand(1, 4, Buffer.concat([pbString(1, token), pbString(4, 'bench')]));
      return channel ? Buffer.concat([connect, pbCommand(2, 5, pbString(1, channel))]) : connect;
    },
    handshake(ws, bytes, channel) {
      if (typeof bytes === 'string') return new Error('herald-protobuf: a text frame');
      let outcome;
      eachReply(bytes, (id, _pub, error) => {
        if (error) outcome = new Error(`herald refused: ${bytes.toString('latin1').slice(0, 200)}`);
        else if (id === (channel ? 2 : 1) && outcome === undefined) outcome = 'ok';
      });
      return outcome;
    },
    onMessage(ws, bytes, st) {
      if (typeof bytes === 'string') return;
      let n = 0;
      eachReply(bytes, (id, pub, _error, reply) => {
        if (reply.length === 0)
          ws.send(Buffer.from([0])); // the ping: an empty Reply; the pong: an empty Command
        else if (pub) n++;
      });
      if (n > 0) {
        // Payloads are JSON bytes inside the protobuf: the "t" fields read as ASCII.
        if (st.sample) scanTimes(bytes.toString('latin1'), st.sample);
        st.delivered += n;
        if (st.after) st.after();
      }
    },
    publish(ws, id, channel, data) {
      ws.send(pbCommand(id, 7, Buffer.concat([pbString(1, channel), pbString(2, data)])));
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
export function open(protoName, url, token, channel, st, localAddress) {
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
    ws = new LeanWebSocket(
      url,
      {
        onOpen() {
          const hello = p.hello(token, channel);
          if (hello !== undefined) ws.send(hello);
        },
        onMessage: (text) => onText(text),
        onBinary: (bytes) => onText(bytes),
        onClose(code, reason) {
          if (!done) fail(new Error(`closed ${code} ${reason}`));
          else st.closed++;
        },
        onError(err) {
          if (done) console.error(`bench client: ${err.message}`);
          fail(err);
        },
      },
      p.subprotocol,
      localAddress,
    );
  });
}
