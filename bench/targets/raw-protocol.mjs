// The protocol ws-raw and ws-preframed share: the first message carries a JWT (verified with jose, HS256) and the
// channel to join, `{"ok":1}` answers it; rooms are Sets of sockets; a message `{"pub":<channel>,"data":...}`
// publishes. How a publication reaches the room's sockets is the target's own (`fanOut`).
import { jwtVerify } from 'jose';
import { WebSocketServer } from 'ws';

/** Serves the protocol on 127.0.0.1:`port`; `fanOut(room, channel, data)` delivers one publication. */
export function serveRawProtocol(port, fanOut) {
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
        const room = rooms.get(msg.pub);
        if (room) fanOut(room, msg.pub, msg.data);
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
  return wss;
}
