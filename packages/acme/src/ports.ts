import type {
  AcmeAccountRecord,
  AcmeAccountStatus,
  AcmeAuthorizationRecord,
  AcmeChallengeRecord,
  AcmeChallengeStatus,
  AcmeChallengeType,
  AcmeEabKeyRecord,
  AcmeOrderRecord,
} from '@shortleaf/store/contracts';
import type { AcmeIdentifier, AcmeProblem } from './errors.js';

/**
 * What the ACME front door needs from storage, declared here by the code that uses it and written
 * in the store's engine-neutral records (`@shortleaf/store/contracts`), so each shape is declared
 * once; every engine implements this port (apps/ca/src/store-conformance.ts checks it at compile
 * time). Ids are random base64url strings made by the caller. Every method is one transaction;
 * the ones that must not half-happen (creating an order with its authorizations, binding an EAB
 * key) say so.
 */
export type AccountStatus = AcmeAccountStatus;
/** As RFC 8555 §7.1.6 names them: `ready` is derived from the authorizations, never stored. */
export type OrderStatus = 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';
/** As RFC 8555 §7.1.6 names them: `expired` is derived from `expires`, never stored. */
export type AuthorizationStatus = 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
export type ChallengeStatus = AcmeChallengeStatus;
export type ChallengeType = AcmeChallengeType;

export type AccountRecord = AcmeAccountRecord;
export type EabKeyRecord = AcmeEabKeyRecord;
export type OrderRecord = AcmeOrderRecord;
export type ChallengeRecord = AcmeChallengeRecord;
export type AuthorizationRecord = AcmeAuthorizationRecord;

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
  transitionOrder(
    id: string,
    from: OrderRecord['status'],
    to: { status: OrderRecord['status']; error?: AcmeProblem; certificateSerial?: string },
  ): Promise<boolean>;
  /** The order whose certificate has this serial, if it came through ACME. */
  getOrderByCertificate(serial: string): Promise<OrderRecord | null>;
  /** The order, not stored as `invalid`, whose `replacesSerial` is this serial. */
  getOrderReplacing(serial: string): Promise<OrderRecord | null>;
  countOrdersSince(accountId: string, since: Date): Promise<number>;

  getAuthorization(id: string): Promise<AuthorizationRecord | null>;
  /** A valid, unexpired authorization of this account for this identifier, to reuse. */
  findValidAuthorization(
    accountId: string,
    identifier: AcmeIdentifier,
    wildcard: boolean,
    now: Date,
  ): Promise<AuthorizationRecord | null>;
  setAuthorizationStatus(id: string, status: AuthorizationRecord['status']): Promise<void>;

  getChallenge(id: string): Promise<ChallengeRecord | null>;
  /** pending → processing; false if the challenge was not pending (a repeat is a no-op). */
  startChallenge(id: string): Promise<boolean>;
  /**
   * Records a validation outcome in one transaction: the challenge (valid, or invalid with its
   * problem) and its authorization (valid with a new expiry, or invalid).
   */
  finishChallenge(
    id: string,
    outcome: { valid: true; at: Date; authorizationExpires: Date } | { valid: false; at: Date; error: AcmeProblem },
  ): Promise<void>;
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
