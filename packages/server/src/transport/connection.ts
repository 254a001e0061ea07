/**
 * What a session sees of its socket. Implemented by transport/websocket.ts; nothing outside transport/ knows `ws`.
 */
export interface ClientTransport {
  /**
   * Queues one protocol message, given as JSON text (a protobuf transport transcodes it). Messages queued in one
   * event-loop turn go out as one frame.
   */
  send(text: string): void;
  /** Queues a frame shared by many sockets: encoded into WebSocket bytes once, written to each socket as is. */
  sendShared(frame: SharedFrame): void;
  /**
   * Stops taking commands from the client until resume(): the session's queue of commands is full (backpressure
   * for a client that pipelines faster than its commands are handled). WebSocket: the socket is no longer read (a
   * frame already read may still arrive). Emulation: later `POST /emulation` requests wait, unanswered and in order.
   */
  pause(): void;
  /** Takes commands again (the session's queue drained to half). */
  resume(): void;
  /** Closes with a WebSocket close code and reason (<= 123 bytes) after what is queued. */
  close(code: number, reason: string): void;
  readonly remoteAddress: string;
  /** Unidirectional transports (transport/uni.ts): the client never answers pings, so no pong is awaited. */
  readonly unidirectional?: boolean;
  /** HTTP emulation transports (transport/emulation.ts): the connect reply tells the client these. */
  readonly emulation?: { session: string; node: string };
}

/**
 * One message for many sockets, as JSON text. Each encoding's bytes are built the first time a transport of that
 * encoding writes it, and then shared: one serialized frame per message per encoding, never one per socket.
 */
export interface SharedFrame {
  readonly text: string;
  /** The JSON WebSocket frame. */
  bytes?: Buffer;
  /** The protobuf Reply, length-delimited (protocol/protobuf/replies.ts): what HTTP streams write. */
  protobufReply?: Buffer;
  /** The protobuf WebSocket frame (that Reply in a binary frame). */
  protobufBytes?: Buffer;
  /** A publication push for fossil-delta subscribers: its data is a JSON string that protobuf sends unquoted. */
  readonly fossil?: boolean;
  /** Builds the protobuf Reply (length-delimited) without the JSON text; else the text is transcoded. */
  protobuf?(): Buffer;
}

/** The client protocol's two encodings: JSON text frames, or protobuf binary frames (`centrifuge-protobuf`). */
export type ProtocolEncoding = 'json' | 'protobuf';

/** What the HTTP upgrade request said, as sessions and hooks need it. */
export interface UpgradeRequestInfo {
  headers: Record<string, string | string[] | undefined>;
  remoteAddress: string;
  url: string;
}
