import type { Broker, ControlMessage } from './engine/broker.js';

/**
 * HTTP-streaming and SSE emulation without sticky sessions: a `POST /emulation` that reaches a node other than the
 * one holding the session's stream (the `node` of the request) is relayed to it over the engine's control channel,
 * and answered with the status the owning node reports (200 delivered, 404 unknown session, 429 its queue is full).
 * Needs a shared engine (Redis); with the memory engine there is no other node to relay to.
 */
export type EmulationControl = Extract<ControlMessage, { type: 'emulation' | 'emulation_reply' }>;

/** How long a relayed request waits for the owning node's answer before it is answered 404 (the node is gone). */
export const RELAY_TIMEOUT_MS = 5000;

export class EmulationRelay {
  /** Set by the front (herald.ts): hands relayed commands to a local session; resolves with the HTTP status. */
  target: ((session: string, data: string | Uint8Array) => Promise<number>) | undefined;
  private readonly waiting = new Map<number, (status: number) => void>();
  private seq = 0;

  constructor(
    private readonly broker: Broker,
    private readonly uid: string,
    private readonly shared: boolean,
    private readonly onError: (err: unknown) => void,
    private readonly timeoutMs = RELAY_TIMEOUT_MS,
  ) {}

  /** Relays commands to `session` on `node`; the HTTP status to answer, or undefined when the engine is not shared. */
  relay(node: string, session: string, data: string | Uint8Array): Promise<number> | undefined {
    if (!this.shared || node === this.uid) return undefined;
    const id = ++this.seq;
    return new Promise<number>((resolve) => {
      const timer = setTimeout(() => settle(404), this.timeoutMs);
      timer.unref();
      const settle = (status: number) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(status);
      };
      this.waiting.set(id, settle);
      this.broker
        .publishControl(
          typeof data === 'string'
            ? { type: 'emulation', node, session, data, from: this.uid, id }
            : // Protobuf commands travel as base64 in the JSON control message.
              {
                type: 'emulation',
                node,
                session,
                data: Buffer.from(data).toString('base64'),
                binary: true,
                from: this.uid,
                id,
              },
        )
        .catch((err: unknown) => {
          this.onError(err);
          settle(503);
        });
    });
  }

  /** A control message of the relay (every node sees each; only the one addressed acts). */
  onControl(msg: EmulationControl): void {
    if (msg.node !== this.uid) return;
    if (msg.type === 'emulation_reply') {
      this.waiting.get(msg.id)?.(msg.status);
      return;
    }
    const target = this.target;
    const data = msg.binary ? Buffer.from(msg.data, 'base64') : msg.data;
    const delivered = target ? target(msg.session, data) : Promise.resolve(404);
    delivered
      .catch((err: unknown) => {
        this.onError(err);
        return 500;
      })
      .then((status) => this.broker.publishControl({ type: 'emulation_reply', node: msg.from, id: msg.id, status }))
      .catch((err: unknown) => this.onError(err));
  }

  /** Requests still waiting are answered 503 (the node is closing). */
  close(): void {
    for (const settle of [...this.waiting.values()]) settle(503);
  }
}
