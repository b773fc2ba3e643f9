// entitle.Client against the real server, and the protocol test vectors.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { REPO, startServer } from './server.mjs';

const entitle = createRequire(import.meta.url)('../index.js');
let server;

before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

function client(seat, options = {}) {
  return new entitle.Client({
    serverUrl: server.base, tenant: server.tenant, product: server.product, jwks: server.jwks,
    seatId: seat, cachePath: path.join(server.data, `${seat}.json`), ...options,
  });
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (error) => error instanceof entitle.EntitleError && error.code === code);
}

test('activate, use features, refresh and deactivate', async () => {
  const c = client('node-seat-1');
  assert.equal(c.isActivated, false);
  assert.throws(() => c.lease(), (e) => e.code === 'not_activated' && !e.isDenial);
  const lease = await c.activate(server.code, { seatName: 'Node test' });
  assert.equal(lease.seat.id, 'node-seat-1');
  assert.equal(c.activationId, lease.sub);
  assert.equal(c.leaseToken.split('.').length, 3);
  assert.equal(c.isEnabled('batch_export'), true);
  assert.equal(c.isEnabled('ai_upscale'), false);
  assert.equal(c.feature('render_nodes').limit, 2);
  assert.equal(c.feature('no_such_feature'), null);
  assert.equal(c.attribute('max_users'), 5);
  assert.equal(c.attribute('missing', 'fallback'), 'fallback');
  assert.equal((await c.state()).sub, lease.sub);
  assert.ok((await c.refresh()).exp >= lease.exp);
  assert.equal((await c.ensureLease()).sub, lease.sub);
  await c.recordUsage('cloud_renders', 3);
  assert.equal(c.feature('cloud_renders').used, 3);
  const again = client('node-seat-1');
  assert.equal(again.isActivated, true);
  await c.deactivate();
  assert.equal(c.isActivated, false);
  await rejectsWith(c.refresh(), 'not_activated');
});

test('denials reject with typed errors', async () => {
  const c = client('node-seat-2');
  await assert.rejects(c.activate('AAAA-BBBB-CCCC-DDDD'), (e) => e.code === 'invalid_credential' && e.isDenial);
  await c.activate(server.code);
  await rejectsWith(c.recordUsage('batch_export'), 'feature_not_entitled');
  await rejectsWith(c.giveBack('render_nodes'), 'nothing_checked_out');
  await rejectsWith(c.checkout('not a key/'), 'config');
  await c.deactivate();
  assert.throws(() => client('x', { jwks: '{"keys": []}' }), (e) => e.code === 'config');
  const unreachable = client('node-seat-x', { serverUrl: 'http://127.0.0.1:9', timeoutSeconds: 0.5 });
  await rejectsWith(unreachable.activate(server.code), 'network');
});

test('pool units are given back after the work, even when it fails', async () => {
  const c = client('node-seat-3');
  await c.activate(server.code);
  const result = await c.withCheckout('render_nodes', 2, async () => {
    assert.equal(c.feature('render_nodes').checked_out, 2);
    await rejectsWith(c.checkout('render_nodes'), 'pool_exhausted');
    return 'rendered';
  });
  assert.equal(result, 'rendered');
  assert.equal(c.feature('render_nodes').checked_out, 0);
  await assert.rejects(c.withCheckout('render_nodes', 1, () => { throw new Error('render failed'); }), /render failed/);
  assert.equal(c.feature('render_nodes').checked_out, 0);
  await c.deactivate();
});

test('the background refresher renews the lease, and calls may overlap', async () => {
  const c = client('node-seat-4', { refreshIntervalSeconds: 0.3 });
  await c.activate(server.code);
  assert.equal(c.refreshStatus(), null);
  await c.startRefresher();
  await c.startRefresher();
  await Promise.all(Array.from({ length: 8 }, () => c.refresh()));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && c.refreshStatus().refreshes < 2) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const status = c.refreshStatus();
  assert.ok(status.refreshes >= 2, JSON.stringify(status));
  assert.equal(status.lastError, null);
  await c.deactivate();
});

test('offline activation round trip', async () => {
  const c = client('node-air-1');
  const request = c.writeActivationRequest(server.code, 'Lab PC');
  assert.ok(request.startsWith('-----BEGIN ENTITLE ACTIVATION REQUEST-----'));
  const { licence_file: licence } = await server.postRequestFile('/licensing/v1/offline/activate', request);
  assert.throws(() => client('node-air-2').loadLicenceFile(licence), (e) => e.code === 'wrong_seat');
  const tampered = licence.replace('-----BEGIN ENTITLE LICENCE FILE-----\n', '-----BEGIN ENTITLE LICENCE FILE-----\nx');
  assert.throws(() => c.loadLicenceFile(tampered), (e) => e.code === 'bad_signature');
  assert.equal(c.loadLicenceFile(licence).seat.offline, true);
  assert.equal(c.isEnabled('batch_export'), true);
  const deactivation = c.writeDeactivationRequest();
  assert.equal(c.isActivated, false);
  assert.equal((await server.postRequestFile('/licensing/v1/offline/deactivate', deactivation)).deactivated, true);
});

test('protocol test vectors', () => {
  const load = (name) => JSON.parse(readFileSync(path.join(REPO, 'protocol', 'vectors', name), 'utf8'));
  const jwks = JSON.stringify(load('keys.json').jwks);
  const leases = load('lease_tokens.json');
  for (const v of leases.vectors) {
    if (v.last_seen !== null && v.now + leases.clock_skew_seconds < v.last_seen) {
      assert.equal(v.verdict, 'clock_set_back', v.name);
      continue;
    }
    const verify = () => entitle.verifyLeaseToken(jwks, v.token, v.product, v.seat_id, v.now);
    if (v.verdict === 'valid') assert.deepEqual(verify(), v.claims, v.name);
    else assert.throws(verify, (e) => e.code === v.verdict, v.name);
  }
  for (const v of load('licence_files.json').vectors) {
    const verify = () => entitle.verifyLicenceFile(jwks, v.text, v.product, v.seat_id, v.now);
    if (v.verdict === 'valid' || v.verdict === 'replay') {
      assert.equal(verify().nonce === v.pending_request_nonce, v.verdict === 'valid', v.name);
    } else {
      assert.throws(verify, (e) => e.code === v.verdict, v.name);
    }
  }
  const fingerprint = entitle.deviceFingerprint('prd_a', path.join(server.data, 'installation-id'));
  assert.equal(fingerprint.length, 64);
});
