// ws-raw: the floor. A minimal `ws` server: the first message carries a JWT (verified with jose, HS256) and the
// channel to join; rooms are Sets of sockets; a publication is serialized once and the same string is passed to
// ws.send() for every subscriber (so ws frames it once per socket).
// Usage: node ws-raw-server.mjs <port>   env BENCH_SECRET
import { jwtVerify } from 'jose';
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2]);
const key = new TextEncoder().encode(process.env.BENCH_SECRET);
const rooms = new Map();

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: false });

wss.on('connection', (ws) => {
  let joined;
  ws.on('error', () => {});
  ws.on('message', async (raw) => {
    let msg;
    try {
      msg = JSON.parse(raw.toString());
    } catch {
      ws.close(1003, 'bad json');
      return;
    }
    if (msg.pub !== undefined) {
      const out = JSON.stringify({ ch: msg.pub, data: msg.data });
      const room = rooms.get(msg.pub);
      if (room) for (const s of room) s.send(out);
      return;
    }
    if (msg.token !== undefined) {
      try {
        await jwtVerify(msg.token, key, { algorithms: ['HS256'], requiredClaims: ['exp'] });
      } catch {
        ws.close(4001, 'bad token');
        return;
      }
      if (typeof msg.sub === 'string') {
        let room = rooms.get(msg.sub);
        if (!room) rooms.set(msg.sub, (room = new Set()));
        room.add(ws);
        joined = msg.sub;
      }
      ws.send('{"ok":1}');
    }
  });
  ws.on('close', () => {
    const room = joined && rooms.get(joined);
    if (room) {
      room.delete(ws);
      if (room.size === 0) rooms.delete(joined);
    }
  });
});
