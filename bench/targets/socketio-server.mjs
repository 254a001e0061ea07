// socketio: Socket.IO 4, WebSocket transport only, rooms; JWT (jose, HS256) verified in a middleware from the
// handshake's auth payload. With BENCH_REDIS_URL set it uses @socket.io/redis-adapter (key BENCH_REDIS_KEY).
// Usage: node socketio-server.mjs <port>   env BENCH_SECRET, BENCH_REDIS_URL?, BENCH_REDIS_KEY?
import { createServer } from 'node:http';
import { jwtVerify } from 'jose';
import { Server } from 'socket.io';

const port = Number(process.argv[2]);
const key = new TextEncoder().encode(process.env.BENCH_SECRET);

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });

if (process.env.BENCH_REDIS_URL) {
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const { Redis } = await import('ioredis');
  const pub = new Redis(process.env.BENCH_REDIS_URL);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub, { key: process.env.BENCH_REDIS_KEY ?? 'socket.io' }));
}

io.use(async (socket, next) => {
  try {
    await jwtVerify(String(socket.handshake.auth?.token ?? ''), key, {
      algorithms: ['HS256'],
      requiredClaims: ['exp'],
    });
    next();
  } catch {
    next(new Error('bad token'));
  }
});

io.on('connection', (socket) => {
  socket.on('sub', (channel, ack) => {
    socket.join(String(channel));
    if (typeof ack === 'function') ack(true);
  });
  socket.on('pub', (channel, data) => {
    io.to(String(channel)).emit('msg', channel, data);
  });
});

http.listen(port, '127.0.0.1');
