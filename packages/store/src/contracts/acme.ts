// ACME state as every engine takes and returns it. The ACME front door's port (packages/acme/src/
// ports.ts) is written in these types: one declaration, whichever engine is below.

export type AcmeAccountStatus = 'valid' | 'deactivated' | 'revoked';
/** What an order stores: `ready` and expiry are derived from its authorizations when read. */
export type AcmeOrderStatus = 'pending' | 'processing' | 'valid' | 'invalid';
export type AcmeAuthorizationStatus = 'pending' | 'valid' | 'invalid' | 'deactivated' | 'revoked';
export type AcmeChallengeStatus = 'pending' | 'processing' | 'valid' | 'invalid';
export type AcmeChallengeType = 'http-01' | 'dns-01' | 'tls-alpn-01';

export interface AcmeIdentifierRecord {
  type: 'dns' | 'ip';
  value: string;
}

/** An RFC 7807 problem document with ACME's subproblems, stored as JSON. */
export interface AcmeProblemRecord {
  type: string;
  detail: string;
  status: number;
  subproblems?: Array<{ type: string; detail: string; identifier: AcmeIdentifierRecord }>;
}

export interface AcmeAccountRecord {
  id: string;
  provisioner: string;
  /** RFC 7638 thumbprint of the account key; unique per provisioner. */
  thumbprint: string;
  /** The public JWK as JSON text. */
  jwk: string;
  status: AcmeAccountStatus;
  contact: string[];
  eabKid: string | null;
  createdAt: Date;
}

export interface AcmeEabKeyRecord {
  kid: string;
  provisioner: string;
  /** The HMAC key, sealed at rest. */
  sealedKey: Uint8Array;
  /** The account it was used for; an EAB key binds one account only. */
  accountId: string | null;
  createdAt: Date;
  boundAt: Date | null;
}

export interface AcmeOrderRecord {
  id: string;
  accountId: string;
  status: AcmeOrderStatus;
  identifiers: AcmeIdentifierRecord[];
  /** Its authorizations, in the order of `identifiers`. */
  authorizationIds: string[];
  notBefore: Date | null;
  notAfter: Date | null;
  expires: Date;
  error: AcmeProblemRecord | null;
  certificateSerial: string | null;
  /** RFC 9773 `replaces`: the ARI certificate ID this order replaces. */
  replaces: string | null;
  /** Serial of the replaced certificate, for the one-replacement rule. */
  replacesSerial: string | null;
  createdAt: Date;
}

export interface AcmeChallengeRecord {
  id: string;
  authorizationId: string;
  type: AcmeChallengeType;
  token: string;
  status: AcmeChallengeStatus;
  /** When the attempt that settled it ran, valid or invalid; null while pending or processing. */
  validated: Date | null;
  error: AcmeProblemRecord | null;
}

export interface AcmeAuthorizationRecord {
  id: string;
  accountId: string;
  identifier: AcmeIdentifierRecord;
  wildcard: boolean;
  status: AcmeAuthorizationStatus;
  expires: Date;
  challenges: AcmeChallengeRecord[];
  createdAt: Date;
}

/** The outcome of a validation, as `finishChallenge` records it. */
export type AcmeValidationOutcome =
  { valid: true; at: Date; authorizationExpires: Date } | { valid: false; at: Date; error: AcmeProblemRecord };
