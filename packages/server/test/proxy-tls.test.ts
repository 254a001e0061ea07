import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient, startHerald, waitFor } from './support/herald.js';
import { Backend, status } from './support/proxy-backend.js';

/** A self-signed certificate for 127.0.0.1 (its own CA), made with openssl. */
function selfSigned(t: TestContext): { key: string; cert: string; certFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'herald-proxy-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  const made = spawnSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  assert.equal(made.status, 0, made.stderr.toString());
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}

/** Sends a connect without a token and returns the reply, or the close when the connection was closed instead. */
async function connectOutcome(wsUrl: string): Promise<{ reply?: any; close?: { code: number; reason: string } }> {
  const raw = await RawClient.open(wsUrl);
  raw.send({ id: 1, connect: {} });
  await waitFor(() => raw.messages.some((m) => m.id === 1) || raw.closeCode !== undefined, 'a reply or a close');
  const reply = raw.messages.find((m) => m.id === 1);
  const close = reply ? undefined : { code: raw.closeCode!, reason: raw.closeReason };
  raw.close();
  return { reply, close };
}

describe('connect proxy over https and status transforms', { timeout: 30_000 }, () => {
  test('an https backend with a private CA is refused (3050) unless http.tls.server_ca_pem trusts that CA', async (t) => {
    const tls = selfSigned(t);
    const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"result":{"user":"tls"}}'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}/connect`;

    const untrusted = await startHerald({
      fileConfig: { client: { proxy: { connect: { enabled: true, endpoint } } } },
    });
    t.after(() => untrusted.close());
    assert.equal((await connectOutcome(untrusted.wsUrl)).close?.code, 3050, 'the certificate is verified');

    const trusted = await startHerald({
      fileConfig: {
        client: {
          proxy: {
            connect: { enabled: true, endpoint, http: { tls: { enabled: true, server_ca_pem: tls.certFile } } },
          },
        },
      },
    });
    t.after(() => trusted.close());
    const ok = await connectOutcome(trusted.wsUrl);
    assert.equal(typeof ok.reply?.connect?.client, 'string');
  });

  test('status_to_code_transforms answers a 403 as the configured error and a 429 as the configured disconnect', async (t) => {
    const backend = await Backend.start();
    t.after(() => backend.close());
    let next = 403;
    backend.on('/connect', () => status(next));
    const s = await startHerald({
      fileConfig: {
        client: {
          proxy: {
            connect: {
              enabled: true,
              endpoint: backend.url('/connect'),
              http: {
                status_to_code_transforms: [
                  { status_code: 403, to_error: { code: 403, message: 'forbidden', temporary: false } },
                  { status_code: 429, to_disconnect: { code: 4429, reason: 'slow down' } },
                ],
              },
            },
          },
        },
      },
    });
    t.after(() => s.close());
    assert.deepEqual((await connectOutcome(s.wsUrl)).reply?.error, { code: 403, message: 'forbidden' });
    next = 429;
    assert.deepEqual((await connectOutcome(s.wsUrl)).close, { code: 4429, reason: 'slow down' });
    next = 500;
    assert.equal((await connectOutcome(s.wsUrl)).close?.code, 3050, 'a status without a transform stays 3050');
  });
});
