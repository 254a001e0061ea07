// A lean WebSocket client for the load generator (RFC 6455, text and binary frames), so the client is not the
// bottleneck: on this 2-core machine the `ws` client spent more CPU per connection than the servers it drove
// (Node's http.ClientRequest, a random key and mask per frame, a stream pipeline per socket). This one writes the
// upgrade request by hand, checks the 101 and the Sec-WebSocket-Accept of its fixed key, masks with a zero key
// (payload bytes unchanged; the mask is mandatory, its value only guards proxies a loopback benchmark does not have)
// and parses server frames from the socket's chunks. Used for every target alike; the servers are unchanged.
import { createHash } from 'node:crypto';
import net from 'node:net';

const KEY = 'aGVyYWxkLWJlbmNoLWtleQ==';
const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');

/** Frame header for a masked client text frame of `len` bytes, mask key 0. */
function header(len, opcode = 0x1) {
  if (len < 126) return Buffer.from([0x80 | opcode, 0x80 | len, 0, 0, 0, 0]);
  if (len < 65536) {
    const h = Buffer.alloc(8);
    h[0] = 0x80 | opcode;
    h[1] = 0x80 | 126;
    h.writeUInt16BE(len, 2);
    return h;
  }
  const h = Buffer.alloc(14);
  h[0] = 0x80 | opcode;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(len), 2);
  return h;
}

export class LeanWebSocket {
  /**
   * @param {string} url ws://host:port/path
   * @param {{ onOpen(): void, onMessage(text: string): void, onBinary?(bytes: Buffer): void, onClose(code: number, reason: string): void, onError(err: Error): void }} handlers
   * @param {string} [subprotocol] Sec-WebSocket-Protocol to ask for (`centrifuge-protobuf`)
   * @param {string} [localAddress] loopback source address to bind (127.0.0.x), for counts near the port range
   */
  constructor(url, handlers, subprotocol, localAddress) {
    const u = new URL(url);
    this.h = handlers;
    this.readyState = 0;
    this.buf = null;
    this.closeCode = 1006;
    this.closeReason = '';
    this.socket = net.connect({ host: u.hostname, port: Number(u.port), noDelay: true, localAddress });
    this.socket.on('connect', () => {
      this.socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
          (subprotocol ? `Sec-WebSocket-Protocol: ${subprotocol}\r\n` : '') +
          '\r\n',
      );
    });
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', (err) => {
      if (this.readyState === 0) this.h.onError(err);
    });
    this.socket.on('close', () => {
      const was = this.readyState;
      this.readyState = 3;
      if (was !== 3) this.h.onClose(this.closeCode, this.closeReason);
    });
  }

  /** A text frame, or a binary frame for a Buffer. */
  send(data) {
    if (this.readyState !== 1) return;
    const binary = Buffer.isBuffer(data);
    const body = binary ? data : Buffer.from(data);
    this.socket.cork();
    this.socket.write(header(body.length, binary ? 0x2 : 0x1));
    this.socket.write(body);
    this.socket.uncork();
  }

  terminate() {
    this.socket.destroy();
  }

  onData(chunk) {
    let buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = null;
    if (this.readyState === 0) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        this.buf = buf;
        return;
      }
      const head = buf.toString('latin1', 0, end);
      if (!head.startsWith('HTTP/1.1 101') || !head.includes(ACCEPT)) {
        this.h.onError(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
        this.socket.destroy();
        return;
      }
      this.readyState = 1;
      this.h.onOpen();
      buf = buf.subarray(end + 4);
    }
    let at = 0;
    while (buf.length - at >= 2) {
      const b0 = buf[at];
      let len = buf[at + 1] & 0x7f;
      let off = at + 2;
      if (len === 126) {
        if (buf.length - at < 4) break;
        len = buf.readUInt16BE(at + 2);
        off = at + 4;
      } else if (len === 127) {
        if (buf.length - at < 10) break;
        len = Number(buf.readBigUInt64BE(at + 2));
        off = at + 10;
      }
      if (buf.length - off < len) break;
      const opcode = b0 & 0x0f;
      if ((b0 & 0x80) === 0 || opcode === 0x0) {
        // None of the targets fragments its messages; counting a fragment as a message would skew every figure.
        this.h.onError(new Error('fragmented WebSocket message: the bench client does not reassemble fragments'));
        this.socket.destroy();
        return;
      }
      if (opcode === 0x1) {
        this.h.onMessage(buf.toString('utf8', off, off + len));
      } else if (opcode === 0x2 && this.h.onBinary) {
        this.h.onBinary(buf.subarray(off, off + len));
      } else if (opcode === 0x9) {
        const payload = buf.subarray(off, off + len);
        this.socket.write(Buffer.concat([header(payload.length, 0xa), payload]));
      } else if (opcode === 0x8) {
        this.closeCode = len >= 2 ? buf.readUInt16BE(off) : 1005;
        this.closeReason = len > 2 ? buf.toString('utf8', off + 2, off + len) : '';
        const wasOpen = this.readyState === 1;
        this.readyState = 2;
        if (wasOpen)
          this.socket.end(Buffer.concat([header(len >= 2 ? 2 : 0, 0x8), buf.subarray(off, off + Math.min(len, 2))]));
      }
      at = off + len;
    }
    if (at < buf.length) this.buf = at === 0 ? buf : buf.subarray(at);
  }
}
