/**
 * The node's connections by user. Most users have one connection: it is held as is, and a Set is made only for a
 * user's second one (a Set and its hash table cost about 230 bytes per user, measured per idle connection).
 */
export class UserIndex<T> {
  private readonly byUser = new Map<string, T | Set<T>>();

  /** Users with at least one connection. */
  get size(): number {
    return this.byUser.size;
  }

  add(user: string, item: T): void {
    const cur = this.byUser.get(user);
    if (cur === undefined) this.byUser.set(user, item);
    else if (cur instanceof Set) cur.add(item);
    else if (cur !== item) this.byUser.set(user, new Set([cur, item]));
  }

  delete(user: string, item: T): void {
    const cur = this.byUser.get(user);
    if (cur === undefined) return;
    if (cur instanceof Set) {
      cur.delete(item);
      if (cur.size === 1) this.byUser.set(user, cur.values().next().value as T);
      else if (cur.size === 0) this.byUser.delete(user);
    } else if (cur === item) this.byUser.delete(user);
  }

  count(user: string): number {
    const cur = this.byUser.get(user);
    if (cur === undefined) return 0;
    return cur instanceof Set ? cur.size : 1;
  }

  /** A snapshot of the user's connections: safe to iterate while they are added or removed. */
  list(user: string): T[] {
    const cur = this.byUser.get(user);
    if (cur === undefined) return [];
    return cur instanceof Set ? [...cur] : [cur];
  }
}
