import { readFileSync } from 'node:fs';

/**
 * The process's limit of open files, which bounds its connections: past it the kernel refuses new sockets and Node
 * closes incoming connections at once without telling anyone (libuv's EMFILE handling). Herald warns before that.
 */

/** The soft "Max open files" of /proc/self/limits (Linux); undefined where it cannot be read or is unlimited. */
export function openFilesLimit(
  read: () => string = () => readFileSync('/proc/self/limits', 'utf8'),
): number | undefined {
  let text: string;
  try {
    text = read();
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('Max open files')) continue;
    const soft = line.slice('Max open files'.length).trim().split(/\s+/)[0];
    const n = Number(soft);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  }
  return undefined;
}

/** Warns once when connections reach 90% of the limit, and again only after they fell below 80% of it. */
export class OpenFilesWatch {
  private warned = false;

  constructor(
    readonly limit: number,
    private readonly warn: (connections: number, limit: number) => void,
  ) {}

  check(connections: number): void {
    if (!this.warned && connections >= this.limit * 0.9) {
      this.warned = true;
      this.warn(connections, this.limit);
    } else if (this.warned && connections < this.limit * 0.8) {
      this.warned = false;
    }
  }
}
