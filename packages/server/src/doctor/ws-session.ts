/**
 * A Centrifugo JSON-protocol conversation over an upgraded socket: send commands, wait for the reply with a
 * given id, collect pushes, answer the server's `{}` pings. Every wait is bounded.
 */
import type { Socket } from 'node:net';
import { encodeClientFrame, encodeClose, FrameReader, Opcode, parseClose } from './ws-frames.js';

export type WsEvent =
  /** `at`: performance.now() when the frame arrived (latency is measured to arrival, not to when it was read). */
  | { type: 'message'; value: Record<string, unknown>; at: number }
  | { type: 'close'; code: number; reason: string }
  | { type: 'timeout' };

export class ProtocolSocket {
  private readonly reader = new FrameReader();
  private readonly queue: WsEvent[] = [];
  private waiter: ((e: WsEvent) => void) | undefined;
  private fragments: Buffer[] = [];
  private closed: { code: number; reason: string } | undefined;

  constructor(
    private readonly socket: Socket,
    head: Buffer | undefined,
  ) {
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('close', () => this.onClosed(1006, ''));
    socket.on('error', () => this.onClosed(1006, ''));
    if (head && head.length > 0) this.onBytes(head);
    socket.resume();
  }

  send(command: unknown): void {
    if (this.closed) return;
    this.socket.write(encodeClientFrame(Opcode.text, Buffer.from(JSON.stringify(command))));
  }

  /** The next message or close, or `timeout` after `ms`. */
  next(ms: number): Promise<WsEvent> {
    const e = this.queue.shift();
    if (e) return Promise.resolve(e);
    if (this.closed) return Promise.resolve({ type: 'close', ...this.closed });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve({ type: 'timeout' });
      }, ms);
      this.waiter = (ev) => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve(ev);
      };
    });
  }

  /** Waits up to `ms` for a message that `done` accepts; non-message events (close, timeout) end the wait too. */
  private async until(ms: number, done: (e: WsEvent & { type: 'message' }) => boolean): Promise<WsEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return { type: 'timeout' };
      const e = await this.next(left);
      if (e.type !== 'message' || done(e)) return e;
    }
  }

  /** Waits for the reply to command `id`; pushes that arrive first go to `onPush`. */
  reply(id: number, ms: number, onPush?: (push: Record<string, unknown>, at: number) => void): Promise<WsEvent> {
    return this.until(ms, (e) => {
      if (e.value.id === id) return true;
      if (e.value.push !== undefined) onPush?.(e.value.push as Record<string, unknown>, e.at);
      return false;
    });
  }

  /** Waits for a push matching `match`. */
  push(match: (push: Record<string, unknown>) => boolean, ms: number): Promise<WsEvent> {
    return this.until(ms, (e) => {
      const p = e.value.push;
      return p !== null && typeof p === 'object' && match(p as Record<string, unknown>);
    });
  }

  close(): void {
    if (!this.closed) {
      try {
        this.socket.write(encodeClose(1000, 'doctor done'));
      } catch {
        /* already gone */
      }
    }
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 200).unref();
  }

  private emit(e: WsEvent): void {
    if (this.waiter) this.waiter(e);
    else this.queue.push(e);
  }

  private onClosed(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    this.emit({ type: 'close', code, reason });
  }

  private onBytes(chunk: Buffer): void {
    for (const f of this.reader.push(chunk)) {
      if (f.opcode === Opcode.ping) {
        this.socket.write(encodeClientFrame(Opcode.pong, f.payload));
        continue;
      }
      if (f.opcode === Opcode.pong) continue;
      if (f.opcode === Opcode.close) {
        const c = parseClose(f.payload);
        this.onClosed(c.code, c.reason);
        this.socket.end();
        continue;
      }
      this.fragments.push(f.payload);
      if (!f.fin) continue;
      const text = Buffer.concat(this.fragments).toString('utf8');
      this.fragments = [];
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          continue;
        }
        if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
        const obj = value as Record<string, unknown>;
        // The server's ping is an empty object; the client answers with one (client-protocol.md).
        if (Object.keys(obj).length === 0) {
          this.send({});
          continue;
        }
        this.emit({ type: 'message', value: obj, at: performance.now() });
      }
    }
  }
}
