/**
 * Values shared by every engine role. Payloads travel as JSON text (already serialized, validated once at the
 * edge) so that no engine and no fan-out path ever parses or re-serializes them.
 */

/** Who published or who is present. `connInfo` / `chanInfo` are JSON text, embedded raw on the wire. */
export interface ClientInfo {
  user: string;
  client: string;
  connInfo?: string;
  chanInfo?: string;
}

/** A publication as stored in history and delivered to subscribers. */
export interface Publication {
  /** Position in the channel's stream; 0 for channels without history. */
  offset: number;
  /** JSON text of the payload. */
  data: string;
  info?: ClientInfo;
  tags?: Record<string, string>;
  /** Map channels: the key this publication sets (or removes). */
  key?: string;
  /** Map channels: the key was removed (by a remove or its TTL); `data` is then ''. */
  removed?: boolean;
}

/**
 * A place in a channel's history stream. `epoch` identifies one continuous life of the stream: it changes when
 * history is lost (memory engine restart, Redis data loss, the stream's meta expiring), so an old
 * `{offset, epoch}` pair can never be mistaken for a position in a new stream.
 */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/** What a publish call stores: the payload and who sent it. */
export interface PublicationInput {
  data: string;
  info?: ClientInfo;
  tags?: Record<string, string>;
}
