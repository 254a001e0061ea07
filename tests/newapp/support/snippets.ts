import { readFileSync } from 'node:fs';

/** A fenced block of a Markdown page, with the `key=value` attributes of its info string (```ts file=lib/auth.ts). */
export interface Snippet {
  lang: string;
  attrs: Record<string, string>;
  body: string;
  /** 1-based line of the opening fence, for messages. */
  line: number;
}

/** Every fenced block of the page, in order. */
export function snippets(markdown: string): Snippet[] {
  const out: Snippet[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`the fence opened on line ${start + 1} is never closed`);
    const attrs: Record<string, string> = {};
    for (const m of open[2]!.matchAll(/(\w+)=(\S+)/g)) attrs[m[1]!] = m[2]!;
    out.push({ lang: open[1]!, attrs, body: body.join('\n') + '\n', line: start + 1 });
  }
  return out;
}

/** The page's blocks tagged `file=<path>`, by path; a path tagged twice is an error. */
export function filesOf(path: string): Map<string, Snippet> {
  const files = new Map<string, Snippet>();
  for (const s of snippets(readFileSync(path, 'utf8'))) {
    const file = s.attrs.file;
    if (file === undefined) continue;
    if (files.has(file))
      throw new Error(`${path}: file=${file} is tagged twice (lines ${files.get(file)!.line}, ${s.line})`);
    files.set(file, s);
  }
  return files;
}

/** The one block tagged `run=<name>`. */
export function runBlock(path: string, name: string): Snippet {
  const found = snippets(readFileSync(path, 'utf8')).filter((s) => s.attrs.run === name);
  if (found.length !== 1) throw new Error(`${path}: expected one block tagged run=${name}, found ${found.length}`);
  return found[0]!;
}

/** `NAME=value` lines (and `export NAME=value`), comments and blank lines skipped; a trailing `# comment` dropped. */
export function envLines(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+#.*$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}
