// What the store takes and returns. Plain data: DER as bytes, serials as lowercase hex, times as
// Date, JSON columns (policy) as text the store does not interpret.

/** An intermediate CA key: sealed private key, its CSR, and the certificate once the root signed it. */
export interface IssuerRecord {
  id: string;
  name: string;
  sealedKey: Uint8Array;
  keyAlgorithm: string;
  csrDer: Uint8Array;
  certDer: Uint8Array | null;
  createdAt: Date;
  activatedAt: Date | null;
  active: boolean;
}

/** What `createIssuer` needs: a new issuer has no certificate and is not active. */
export type NewIssuer = Pick<IssuerRecord, 'id' | 'name' | 'sealedKey' | 'keyAlgorithm' | 'csrDer' | 'createdAt'>;

/** A credential source the authority trusts: a JWK for one-time tokens, or ACME. */
export interface ProvisionerRecord {
  name: string;
  /** Its provisioner type (`jwk`, `acme`, …): the authority's registry says which exist, not the store. */
  type: string;
  publicJwk: string | null;
  policy: string;
  /** JSON options of its type (ACME: whether EAB is required, rate limits, terms of service); `{}` if none. */
  options: string;
  createdAt: Date;
}

/** What `addProvisioner` needs: `options` defaults to `{}`. */
export type NewProvisioner = Omit<ProvisionerRecord, 'options'> & { options?: string };

/** One certificate, from reservation (`der` null) to issuance. */
export interface CertificateRecord {
  serial: string;
  issuerId: string;
  subject: string;
  names: string[];
  notBefore: Date;
  notAfter: Date;
  der: Uint8Array | null;
  provisioner: string;
  requester: string;
  status: 'reserved' | 'issued';
  createdAt: Date;
  issuedAt: Date | null;
  /** The certificate this one renewed, or null when a credential (token, ACME order) issued it. */
  renewedFrom: string | null;
  /** The serial of the certificate that started this one's lineage (its own when it started one). */
  lineage: string;
  /** When the lineage's holder last presented a real credential; renewals inherit it. */
  lineageStartedAt: Date;
  /** SHA-256 (hex) of the canonical DER SubjectPublicKeyInfo; null only for old unsigned reservations. */
  spkiSha256: string | null;
  /**
   * The DER TBSCertificate recorded with the reservation: exactly the bytes then signed. Absent
   * for certificates reserved before migration 0008 (or by a caller that recorded none).
   */
  tbsDer?: Uint8Array;
}

/** The lineage fields a reservation may leave out: a certificate alone starts its own lineage. */
export type LineageFields = 'renewedFrom' | 'lineage' | 'lineageStartedAt' | 'spkiSha256';

/**
 * What is recorded before signing: everything but the result. Without lineage fields the
 * certificate starts its own lineage at `createdAt`.
 */
export type CertificateReservation = Omit<CertificateRecord, 'der' | 'status' | 'issuedAt' | LineageFields> &
  Partial<Pick<CertificateRecord, LineageFields>>;

/** One line of the audit log; `detail` is stored as JSON. */
export interface AuditEntry {
  at: Date;
  action: string;
  actor: string;
  serial: string | null;
  detail: Record<string, unknown>;
}

/** A spent one-time token, remembered until it can no longer verify. */
export interface TokenUse {
  provisioner: string;
  jti: string;
  /** The last instant the token could verify (its exp plus the verifier's clock skew): pruned after it. */
  expiresAt: Date;
}

/** The first step of issuance, written in one transaction. */
export interface ReserveCertificateInput {
  certificate: CertificateReservation;
  tokenUse?: TokenUse;
  audit: AuditEntry;
}

/** How many certificates one requester got from one provisioner in a window, and when the oldest of them was reserved. */
export interface CertificatesSince {
  count: number;
  /** Null when there are none: the window is empty. */
  oldest: Date | null;
}

/** Filters for `listCertificates`. */
export interface ListCertificatesOptions {
  status?: 'reserved' | 'issued';
  expiringBefore?: Date;
  limit?: number;
}

/** Filters for `listAudit`. */
export interface ListAuditOptions {
  since?: Date;
  /** Only entries of this action (`issue`, `renew`, `revoke`). */
  action?: string;
  limit?: number;
}
