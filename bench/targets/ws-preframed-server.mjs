// ws-preframed: the floor of a `ws`-based design. The same protocol as ws-raw (the first message carries a JWT,
// verified with jose, HS256, and the channel to join; rooms are Sets of sockets), but a publication's WebSocket
// frame is built once: the unmasked server text frame (FIN + opcode 1, the 7/16/64-bit payload length, RFC 6455
// §5.2) followed by the UTF-8 payload, in one Buffer, and that same Buffer is written to every subscriber's TCP
// socket (`ws._socket.write(frame)`), skipping ws's per-socket framing (`ws.send()` builds a header per socket and
// writes header and payload as two corked writes). Safe here because per-message deflate is off (no RSV1, no
// per-socket compression state) and ws writes each of its own frames whole (a cork/uncork around header and
// payload), so a pre-built frame never lands inside another frame. Sockets that are not OPEN are skipped.
// Usage: node ws-preframed-server.mjs <port>   env BENCH_SECRET
import { WebSocket } from 'ws';
import { serveRawProtocol } from './raw-protocol.mjs';

/** One unmasked, final text frame holding `text`. */
function textFrame(text) {
  const payload = Buffer.from(text);
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + len);
  frame[0] = 0x81; // FIN, opcode 0x1 (text)
  if (len < 126) frame[1] = len;
  else if (len < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(len), 2);
  }
  payload.copy(frame, head);
  return frame;
}

serveRawProtocol(Number(process.argv[2]), (room, ch, data) => {
  const frame = textFrame(JSON.stringify({ ch, data }));
  for (const s of room) if (s.readyState === WebSocket.OPEN) s._socket.write(frame);
});
