// HS256 connection tokens for the load client (the servers verify them with jose, Herald with its own auth).
import { createHmac } from 'node:crypto';

export const BENCH_SECRET = 'herald-bench-secret-not-for-production-0123456789';

const b64 = (s) => Buffer.from(s).toString('base64url');
const header = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

export function signToken(sub, ttlSec = 3600, secret = BENCH_SECRET) {
  const body = b64(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + ttlSec }));
  const sig = createHmac('sha256', secret).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${sig}`;
}
