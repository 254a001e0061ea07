// The app's connect proxy for the `connect-proxy` scenario: a minimal Node HTTP server answering Herald's connect
// proxy requests (Centrifugo v6 JSON). It reads the session id from the forwarded Cookie header, as a Next.js route
// reading its session cookie would, and names the user; no database, so the measurement is Herald's proxy path.
// Usage: node connect-proxy-backend.mjs <port>
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const sid = /(?:^|; )sid=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    const answer = sid
      ? { result: { user: `u-${sid.slice(-16)}`, info: { client: body.client.slice(0, 8) } } }
      : { disconnect: { code: 4501, reason: 'no session' } };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
  });
});
server.listen(port, '127.0.0.1');
