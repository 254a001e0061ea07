import type { IncomingMessage } from 'node:http';

/**
 * Reading a bounded request body. Past the limit nothing more is kept, but the rest is still read and discarded
 * (for at most `drainMs`) before the caller answers 413: closing a socket whose peer is still sending makes the
 * kernel reset the connection, and the client would see a reset instead of the 413.
 */
export type BodyResult =
  | { ok: true; body: Buffer }
  /** `tooLarge`: over the limit (answer 413); otherwise the request was aborted (answer nothing). */
  | { ok: false; tooLarge: boolean };

/** How long the rest of an oversized body is read and discarded before the 413 goes out anyway. */
export const DRAIN_MS = 2000;

export function readBoundedBody(req: IncomingMessage, limit: number, drainMs = DRAIN_MS): Promise<BodyResult> {
  return new Promise((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (r: BodyResult) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve(r);
    };
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    const overLimit = () => {
      over = true;
      chunks.length = 0;
      timer = setTimeout(() => settle({ ok: false, tooLarge: true }), drainMs);
      timer.unref();
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) overLimit();
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) overLimit();
      else chunks.push(c);
    });
    req.on('end', () => settle(over ? { ok: false, tooLarge: true } : { ok: true, body: Buffer.concat(chunks) }));
    req.on('error', () => settle({ ok: false, tooLarge: false }));
    req.on('close', () => settle(over ? { ok: false, tooLarge: true } : { ok: false, tooLarge: false }));
  });
}
