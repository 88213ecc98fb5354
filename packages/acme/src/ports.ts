import type { AcmeIdentifier, AcmeProblem } from './errors.js';

/**
 * What the ACME front door needs from storage, declared here by the code that uses it (the
 * SQLite adapter in @shortleaf/store implements it as `store.acme`). Ids are random base64url
 * strings made by the caller. Every method is one transaction; the ones that must not half-happen
 * (creating an order with its authorizations, binding an EAB key) say so.
 */
export type AccountStatus = 'valid' | 'deactivated' | 'revoked';
export type OrderStatus = 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';
export type AuthorizationStatus = 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
export type ChallengeStatus = 'pending' | 'processing' | 'valid' | 'invalid';
export type ChallengeType = 'http-01' | 'dns-01' | 'tls-alpn-01';

export interface AccountRecord {
  id: string;
  provisioner: string;
  /** RFC 7638 thumbprint of the account key; unique per provisioner. */
  thumbprint: string;
  /** The public JWK as JSON text. */
  jwk: string;
  status: AccountStatus;
  contact: string[];
  eabKid: string | null;
  createdAt: Date;
}

export interface EabKeyRecord {
  kid: string;
  provisioner: string;
  /** The HMAC key, sealed at rest. */
  sealedKey: Uint8Array;
  /** The account it was used for; an EAB key binds one account only. */
  accountId: string | null;
  createdAt: Date;
  boundAt: Date | null;
}

export interface OrderRecord {
  id: string;
  accountId: string;
  /** Stored status: `pending` until finalize; `ready` and expiry are derived from authorizations. */
  status: 'pending' | 'processing' | 'valid' | 'invalid';
  identifiers: AcmeIdentifier[];
  authorizationIds: string[];
  notBefore: Date | null;
  notAfter: Date | null;
  expires: Date;
  error: AcmeProblem | null;
  certificateSerial: string | null;
  /** RFC 9773 `replaces`: the ARI certificate ID this order replaces. */
  replaces: string | null;
  /** Serial of the replaced certificate, for the one-replacement rule. */
  replacesSerial: string | null;
  createdAt: Date;
}

export interface ChallengeRecord {
  id: string;
  authorizationId: string;
  type: ChallengeType;
  token: string;
  status: ChallengeStatus;
  validated: Date | null;
  error: AcmeProblem | null;
}

export interface AuthorizationRecord {
  id: string;
  accountId: string;
  identifier: AcmeIdentifier;
  wildcard: boolean;
  status: 'pending' | 'valid' | 'invalid' | 'deactivated' | 'revoked';
  expires: Date;
  challenges: ChallengeRecord[];
  createdAt: Date;
}

export interface AcmeStore {
  createAccount(a: AccountRecord, eab?: { kid: string; at: Date }): Promise<void>;
  getAccount(id: string): Promise<AccountRecord | null>;
  getAccountByThumbprint(provisioner: string, thumbprint: string): Promise<AccountRecord | null>;
  updateAccount(id: string, change: { contact?: string[]; status?: AccountStatus }): Promise<void>;
  /** Replaces the key; `conflict` (StoreError 'conflict') when another account holds the new one. */
  changeAccountKey(id: string, jwk: string, thumbprint: string): Promise<void>;

  createEabKey(r: Omit<EabKeyRecord, 'accountId' | 'boundAt'>): Promise<void>;
  getEabKey(kid: string): Promise<EabKeyRecord | null>;
  listEabKeys(provisioner: string): Promise<EabKeyRecord[]>;

  /**
   * Creates an order and its new authorizations (with their challenges) in one transaction; ids
   * in `authorizationIds` that are not among the new ones are existing valid ones it links to. When `replacesSerial` is set and
   * another order that is not `invalid` already replaces that serial, throws StoreError
   * 'conflict' and writes nothing.
   */
  createOrder(o: OrderRecord, newAuthorizations: AuthorizationRecord[]): Promise<void>;
  getOrder(id: string): Promise<OrderRecord | null>;
  /** Orders of an account, newest first. */
  listOrders(accountId: string, limit: number): Promise<OrderRecord[]>;
  /** Moves an order only from `from`; returns false (and writes nothing) if it was not in `from`. */
  transitionOrder(id: string, from: OrderRecord['status'], to: { status: OrderRecord['status']; error?: AcmeProblem; certificateSerial?: string }): Promise<boolean>;
  /** The order whose certificate has this serial, if it came through ACME. */
  getOrderByCertificate(serial: string): Promise<OrderRecord | null>;
  /** The order, not stored as `invalid`, whose `replacesSerial` is this serial. */
  getOrderReplacing(serial: string): Promise<OrderRecord | null>;
  countOrdersSince(accountId: string, since: Date): Promise<number>;

  getAuthorization(id: string): Promise<AuthorizationRecord | null>;
  /** A valid, unexpired authorization of this account for this identifier, to reuse. */
  findValidAuthorization(accountId: string, identifier: AcmeIdentifier, wildcard: boolean, now: Date): Promise<AuthorizationRecord | null>;
  setAuthorizationStatus(id: string, status: AuthorizationRecord['status']): Promise<void>;

  getChallenge(id: string): Promise<ChallengeRecord | null>;
  /** pending → processing; false if the challenge was not pending (a repeat is a no-op). */
  startChallenge(id: string): Promise<boolean>;
  /**
   * Records a validation outcome in one transaction: the challenge (valid, or invalid with its
   * problem) and its authorization (valid with a new expiry, or invalid).
   */
  finishChallenge(id: string, outcome: { valid: true; at: Date; authorizationExpires: Date } | { valid: false; at: Date; error: AcmeProblem }): Promise<void>;
  countFailedValidationsSince(accountId: string, since: Date): Promise<number>;
}

/**
 * What the ACME front door reports for metrics; the `serve` command implements it (with
 * prom-client), so this package depends on no metrics library. Calls are synchronous and cheap.
 */
export interface AcmeTelemetry {
  /**
   * An order was recorded in a state: `pending` when created, `processing` when finalize starts,
   * `valid` once its certificate is issued, `invalid` when finalize fails on our side or an
   * abandoned replacement is settled. (`ready` is derived from its authorizations, never recorded.)
   */
  orderState(state: 'pending' | 'processing' | 'valid' | 'invalid'): void;
  /** A challenge validation failed, by challenge type and ACME problem type (without the URN prefix). */
  validationFailed(challenge: ChallengeType, problem: string): void;
}

export const NO_ACME_TELEMETRY: AcmeTelemetry = { orderState: () => undefined, validationFailed: () => undefined };
