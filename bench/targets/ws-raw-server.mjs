// ws-raw: the floor. A minimal `ws` server: the first message carries a JWT (verified with jose, HS256) and the
// channel to join; rooms are Sets of sockets; a publication is serialized once and the same string is passed to
// ws.send() for every subscriber (so ws frames it once per socket).
// Usage: node ws-raw-server.mjs <port>   env BENCH_SECRET
import { serveRawProtocol } from './raw-protocol.mjs';

serveRawProtocol(Number(process.argv[2]), (room, ch, data) => {
  const out = JSON.stringify({ ch, data });
  for (const s of room) s.send(out);
});
