'use strict';
// The `entitle` module: the native client (entitle.node, built from src/lib.rs) with Promises
// for every call that talks to the server and typed errors (EntitleError, `code` = the denial
// code or the SDK's verdict).
const path = require('node:path');

const native = require(process.env.ENTITLE_NODE_NATIVE || path.join(__dirname, 'entitle.node'));

const DENIALS = new Set([
  'invalid_request', 'invalid_credential', 'invalid_activation', 'entitlement_not_started',
  'entitlement_expired', 'entitlement_disabled', 'seat_limit_reached', 'feature_not_entitled',
  'pool_exhausted', 'nothing_checked_out', 'usage_limit_reached', 'lease_expired',
  'offline_not_allowed', 'rate_limited', 'server_busy',
]);

class EntitleError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'EntitleError';
    this.code = code;
  }

  /** A signed refusal of the server (its denial code), rather than the SDK's own verdict. */
  get isDenial() {
    return DENIALS.has(this.code);
  }
}

function convert(error) {
  const match = /^\[([a-z_]+)\] ([\s\S]*)$/.exec((error && error.message) || '');
  return match ? new EntitleError(match[1], match[2]) : error;
}

function sync(call) {
  try {
    return call();
  } catch (error) {
    throw convert(error);
  }
}

async function later(call) {
  try {
    return await call();
  } catch (error) {
    throw convert(error);
  }
}

class Client {
  #native;

  constructor(options) {
    this.#native = sync(() => new native.NativeClient(options));
  }

  /** activate(code, {seatName}) or activate({email, password, seatName}). */
  activate(credential, options = {}) {
    if (typeof credential === 'string') {
      return later(() => this.#native.activate(credential, undefined, undefined, options.seatName));
    }
    const { email, password, seatName } = credential || {};
    return later(() => this.#native.activate(undefined, email, password, seatName));
  }

  state() { return later(() => this.#native.state()); }
  refresh() { return later(() => this.#native.refresh()); }
  ensureLease() { return later(() => this.#native.ensureLease()); }
  deactivate() { return later(() => this.#native.deactivate()); }
  checkout(feature, count = 1) { return later(() => this.#native.checkout(feature, count)); }
  giveBack(feature, count = 1) { return later(() => this.#native.giveBack(feature, count)); }
  recordUsage(feature, amount = 1) { return later(() => this.#native.recordUsage(feature, amount)); }
  startRefresher() { return later(() => this.#native.startRefresher()); }

  /** Checks out pool units for the duration of `work` and gives them back after, even on error. */
  async withCheckout(feature, count, work) {
    await this.checkout(feature, count);
    try {
      return await work();
    } finally {
      await this.giveBack(feature, count);
    }
  }

  refreshStatus() { return this.#native.refreshStatus(); }
  lease() { return sync(() => this.#native.lease()); }
  isEnabled(feature) { return sync(() => this.#native.isEnabled(feature)); }
  feature(key) { return sync(() => this.#native.feature(key)); }
  attribute(key, fallback = null) {
    const value = sync(() => this.#native.attribute(key));
    return value === null || value === undefined ? fallback : value;
  }

  get isActivated() { return this.#native.isActivated; }
  get activationId() { return this.#native.activationId; }
  get leaseToken() { return this.#native.leaseToken; }
  get seatId() { return this.#native.seatId; }

  writeActivationRequest(code, seatName) {
    return sync(() => this.#native.writeActivationRequest(code, seatName));
  }
  loadLicenceFile(text) { return sync(() => this.#native.loadLicenceFile(text)); }
  writeDeactivationRequest() { return sync(() => this.#native.writeDeactivationRequest()); }
}

module.exports = {
  Client,
  EntitleError,
  deviceFingerprint: (product, fallbackFile) => sync(() => native.deviceFingerprint(product, fallbackFile)),
  verifyLeaseToken: (jwks, token, product, seatId, now) =>
    sync(() => native.verifyLeaseToken(jwks, token, product, seatId, now)),
  verifyLicenceFile: (jwks, text, product, seatId, now) =>
    sync(() => native.verifyLicenceFile(jwks, text, product, seatId, now)),
};
