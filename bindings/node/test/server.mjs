// The real server for the tests: the `entitle` binary with a temporary SQLite database and the
// demo catalogue (PhotoForge, entitlement PF-PRO-Y with 6 seats), on a free port.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function binary() {
  if (process.env.ENTITLE_BIN) return process.env.ENTITLE_BIN;
  return path.join(process.env.CARGO_TARGET_DIR || path.join(REPO, 'target'), 'debug', 'entitle');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

export async function startServer() {
  const data = mkdtempSync(path.join(tmpdir(), 'entitle-node-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ENTITLE_')));
  Object.assign(env, { ENTITLE_DATA_DIR: data, ENTITLE_LISTEN: `127.0.0.1:${port}`, ENTITLE_PUBLIC_URL: base });
  const seeded = execFileSync(binary(), ['demo'], { env, encoding: 'utf8' });
  const tenant = /tenant id:\s+(\S+)/.exec(seeded)[1];
  const product = /PhotoForge \((\S+)\)/.exec(seeded)[1];
  const code = /activation code (\S+)/.exec(seeded)[1];
  const child = spawn(binary(), ['serve'], { env, stdio: 'ignore' });
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const jwks = await (await fetch(`${base}/licensing/v1/tenants/${tenant}/jwks.json`)).text();
  return {
    base, tenant, product, code, jwks, data,
    async postRequestFile(route, request) {
      const answer = await fetch(base + route, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ request }),
      });
      if (!answer.ok) throw new Error(`${route}: ${answer.status}`);
      return answer.json();
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      rmSync(data, { recursive: true, force: true });
    },
  };
}
