/**
 * Shared state behind the `channel_occupied` / `channel_vacated` and `presence_join` / `presence_leave` webhook events
 * on an engine several nodes share (docs/proxy.md, "Webhooks"): for each channel and key (`o` for the channel's
 * subscribers, `p:<user>` for a user's presence in it), which nodes hold it. A node holds a key while it has at least
 * one local subscription behind it; the transitions "no node held it" -> "a node holds it" and back are decided by the
 * store in one atomic step, so exactly one node sees each and sends its event.
 *
 * Contract (redis/lifecycle.ts):
 * - `hold` is idempotent and refreshes the hold for `ttlMs`; it resolves true when no node held the key before.
 * - `release` resolves true when no node holds the key after it (false when this node did not hold it).
 * - `sweep` releases holds whose node stopped refreshing them (a killed node) and resolves with the keys no node
 *   holds now; each such key is reported to one caller only.
 * - Rejects (HeraldError 100) when the store cannot answer; the caller counts it and goes on.
 * An engine that is not shared needs none of this (one node sees every transition): it has no `lifecycle`.
 */
export interface LifecycleStore {
  hold(channel: string, key: string, node: string, ttlMs: number): Promise<boolean>;
  release(channel: string, key: string, node: string): Promise<boolean>;
  sweep(limit: number): Promise<{ channel: string; key: string }[]>;
}
