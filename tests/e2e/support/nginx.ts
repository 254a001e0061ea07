import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, waitForHttp, type Child } from './processes.js';

export const NGINX = '/usr/sbin/nginx';

/**
 * The nginx configuration of docs/deployment.md (topology 3), with the ports filled in: /ws goes to Herald with the
 * upgrade headers and a read timeout above Herald's ping interval; everything else goes to Next.js.
 */
export function nginxConfig(p: { listen: number; next: number; herald: number; prefix: string }): string {
  return `worker_processes 1;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${p.prefix}/client_body;
  proxy_temp_path ${p.prefix}/proxy;
  fastcgi_temp_path ${p.prefix}/fastcgi;
  uwsgi_temp_path ${p.prefix}/uwsgi;
  scgi_temp_path ${p.prefix}/scgi;

  map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
  }

  upstream herald { server 127.0.0.1:${p.herald}; }
  upstream nextjs { server 127.0.0.1:${p.next}; }

  server {
    listen 127.0.0.1:${p.listen};

    location /ws {
      proxy_pass http://herald;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 75s;
      proxy_send_timeout 75s;
      proxy_buffering off;
    }

    location / {
      proxy_pass http://nextjs;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
  }
}
`;
}

export async function startNginx(p: { listen: number; next: number; herald: number }): Promise<{ child: Child; dir: string; cleanup(): Promise<void> }> {
  if (!existsSync(NGINX)) throw new Error(`${NGINX} not found: install Debian's nginx (apt-get install nginx; .ci/run does)`);
  const dir = mkdtempSync(join(tmpdir(), 'herald-nginx-'));
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig({ ...p, prefix: dir }));
  const child = start('nginx', NGINX, ['-c', join(dir, 'nginx.conf'), '-p', dir, '-g', `daemon off; pid ${dir}/nginx.pid; error_log stderr;`]);
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
