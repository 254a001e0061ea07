import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, waitForHttp, type Child } from './processes.js';

export const NGINX = '/usr/sbin/nginx';

const DOCS = join(import.meta.dirname, '..', '..', '..', 'docs', 'deployment.md');

/**
 * The nginx configuration of docs/deployment.md (topology 3), taken from the page itself so the documented block is
 * the tested one: its first `nginx` fenced block, with the ports replaced and wrapped in what a standalone nginx
 * under /tmp needs (temp paths, no access log).
 */
export function nginxConfig(p: { listen: number; next: number; herald: number; prefix: string }): string {
  const m = /```nginx\n([\s\S]*?)```/.exec(readFileSync(DOCS, 'utf8'));
  if (!m) throw new Error(`no nginx block in ${DOCS}`);
  const block = m[1]!
    .replace('listen 80;', `listen 127.0.0.1:${p.listen};`)
    .replaceAll('http://127.0.0.1:3002', `http://127.0.0.1:${p.herald}`)
    .replaceAll('http://127.0.0.1:3000', `http://127.0.0.1:${p.next}`);
  if (!block.includes(String(p.listen)) || !block.includes(String(p.herald)) || !block.includes(String(p.next))) {
    throw new Error(
      'the nginx block in docs/deployment.md no longer has listen 80, 127.0.0.1:3002 and 127.0.0.1:3000 to substitute',
    );
  }
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((d) => `  ${d}_temp_path ${p.prefix}/${d};`)
    .join('\n');
  return `worker_processes 1;\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n${temp}\n${block}}\n`;
}

export async function startNginx(p: {
  listen: number;
  next: number;
  herald: number;
}): Promise<{ child: Child; dir: string; cleanup(): Promise<void> }> {
  if (!existsSync(NGINX))
    throw new Error(`${NGINX} not found: install Debian's nginx (apt-get install nginx; .ci/run does)`);
  const dir = mkdtempSync(join(tmpdir(), 'herald-nginx-'));
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig({ ...p, prefix: dir }));
  const child = start('nginx', NGINX, [
    '-c',
    join(dir, 'nginx.conf'),
    '-p',
    dir,
    '-g',
    `daemon off; pid ${dir}/nginx.pid; error_log stderr;`,
  ]);
  await waitForHttp(`http://127.0.0.1:${p.listen}/login`, 15_000, child);
  return {
    child,
    dir,
    async cleanup() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
