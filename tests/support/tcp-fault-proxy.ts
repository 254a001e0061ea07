// A TCP proxy of our own for network faults between a Herald node and a server it depends on:
//   partition(): bytes stop flowing both ways and nothing is closed (a cable pulled, a firewall dropping packets);
//                what was sent waits in buffers, as it would in flight, and flows again on heal();
//   reset():     every connection through the proxy is destroyed (RST), new ones are still accepted.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpFaultProxy {
  readonly port: number;
  partition(): void;
  heal(): void;
  reset(): void;
  /** Connections through the proxy now. */
  readonly connections: number;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
}

export async function startTcpFaultProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpFaultProxy> {
  const pairs = new Set<Pair>();
  let partitioned = false;

  const flow = (p: Pair) => {
    p.client.pipe(p.upstream);
    p.upstream.pipe(p.client);
  };
  const hold = (p: Pair) => {
    p.client.unpipe(p.upstream);
    p.upstream.unpipe(p.client);
    p.client.pause();
    p.upstream.pause();
  };

  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    if (partitioned) hold(pair);
    else flow(pair);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  return {
    port,
    partition() {
      partitioned = true;
      for (const p of pairs) hold(p);
    },
    heal() {
      partitioned = false;
      for (const p of pairs) flow(p);
    },
    reset() {
      for (const p of [...pairs]) {
        p.client.resetAndDestroy();
        p.upstream.resetAndDestroy();
        pairs.delete(p);
      }
    },
    get connections() {
      return pairs.size;
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
