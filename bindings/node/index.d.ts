// Types of the `entitle` module (index.js).

export interface ClientOptions {
  serverUrl: string;
  tenant: string;
  product: string;
  /** The tenant's jwks.json text, pinned in the application. */
  jwks: string;
  seatId: string;
  /** Where the lease and the activation secret are kept between runs. */
  cachePath: string;
  /** A private CA for the server's TLS certificate (PEM). */
  rootCaPem?: string;
  timeoutSeconds?: number;
  /** Refresh at this fixed pace instead of at half-time. */
  refreshIntervalSeconds?: number;
}

export interface Feature {
  key: string;
  kind: 'bool' | 'element_pool' | 'usage_count' | string;
  enabled: boolean;
  limit: number | null;
  overdraft: number;
  used: number;
  checked_out: number;
}

/** The verified lease claims. Times are Unix seconds. */
export interface Lease {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  exp: number;
  nonce?: string;
  entitlement: {
    id: string; status: string; sku: string; plan_kind: string;
    expires_at: number | null; grace_expires_at: number | null;
    seat_count: number; seats_used: number; overdraft_seats: number | null; concurrency_mode: string;
  };
  seat: { id: string; name: string | null; overdraft: boolean; offline: boolean };
  features: Feature[];
  attributes: { key: string; value: unknown }[];
}

export interface RefreshStatus {
  refreshes: number;
  leaseExpiresAt: number | null;
  lastError: string | null;
}

export type DenialCode =
  | 'invalid_request' | 'invalid_credential' | 'invalid_activation' | 'entitlement_not_started'
  | 'entitlement_expired' | 'entitlement_disabled' | 'seat_limit_reached' | 'feature_not_entitled'
  | 'pool_exhausted' | 'nothing_checked_out' | 'usage_limit_reached' | 'lease_expired'
  | 'offline_not_allowed' | 'rate_limited' | 'server_busy';

export type VerdictCode =
  | 'not_activated' | 'bad_signature' | 'replay' | 'expired' | 'clock_set_back' | 'wrong_product'
  | 'wrong_seat' | 'network' | 'server' | 'malformed' | 'config' | 'cache';

export class EntitleError extends Error {
  readonly code: DenialCode | VerdictCode | string;
  /** A signed refusal of the server rather than the SDK's own verdict. */
  readonly isDenial: boolean;
}

export class Client {
  constructor(options: ClientOptions);
  activate(code: string, options?: { seatName?: string }): Promise<Lease>;
  activate(account: { email: string; password: string; seatName?: string }): Promise<Lease>;
  state(): Promise<Lease>;
  refresh(): Promise<Lease>;
  ensureLease(): Promise<Lease>;
  deactivate(): Promise<void>;
  checkout(feature: string, count?: number): Promise<Lease>;
  giveBack(feature: string, count?: number): Promise<Lease>;
  recordUsage(feature: string, amount?: number): Promise<Lease>;
  withCheckout<T>(feature: string, count: number, work: () => Promise<T> | T): Promise<T>;
  startRefresher(): Promise<void>;
  refreshStatus(): RefreshStatus | null;
  lease(): Lease;
  isEnabled(feature: string): boolean;
  feature(key: string): Feature | null;
  attribute<T = unknown>(key: string, fallback?: T): unknown | T;
  readonly isActivated: boolean;
  readonly activationId: string | null;
  readonly leaseToken: string | null;
  readonly seatId: string;
  writeActivationRequest(code: string, seatName?: string): string;
  loadLicenceFile(text: string): Lease;
  writeDeactivationRequest(): string;
}

export function deviceFingerprint(product: string, fallbackFile: string): string;
export function verifyLeaseToken(jwks: string, token: string, product: string, seatId: string, now: number): Lease;
export function verifyLicenceFile(jwks: string, text: string, product: string, seatId: string, now: number): Lease;
