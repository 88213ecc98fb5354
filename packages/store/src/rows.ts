import type { AuditEntry, CertificateRecord, IssuerRecord, ProvisionerRecord } from './records.js';

// Rows as better-sqlite3 returns them (snake_case, TEXT times, INTEGER booleans, Buffer blobs)
// and their conversion to records. Kept apart so the SQL in sqlite-store.ts reads on its own.

export interface IssuerRow {
  id: string;
  name: string;
  sealed_key: Buffer;
  key_algorithm: string;
  csr_der: Buffer;
  cert_der: Buffer | null;
  created_at: string;
  activated_at: string | null;
  active: number;
}

export interface ProvisionerRow {
  name: string;
  type: string;
  public_jwk: string | null;
  policy: string;
  options: string;
  created_at: string;
}

export interface CertificateRow {
  serial: string;
  issuer_id: string;
  subject: string;
  names: string;
  not_before: string;
  not_after: string;
  der: Buffer | null;
  provisioner: string;
  requester: string;
  status: 'reserved' | 'issued';
  created_at: string;
  issued_at: string | null;
  renewed_from: string | null;
  lineage: string;
  lineage_started_at: string;
  spki_sha256: string | null;
  /** Added by migration 0008. */
  tbs_der?: Buffer | null;
}

export interface AuditRow {
  id: number;
  at: string;
  action: string;
  actor: string;
  serial: string | null;
  detail: string;
}

/** Dates are stored as `toISOString()` text: UTC, fixed width, so text order is time order. */
export function toText(date: Date): string {
  return date.toISOString();
}

export function fromText(text: string): Date {
  return new Date(text);
}

function fromNullableText(text: string | null): Date | null {
  return text === null ? null : new Date(text);
}

export function toIssuerRecord(row: IssuerRow): IssuerRecord {
  return {
    id: row.id,
    name: row.name,
    sealedKey: row.sealed_key,
    keyAlgorithm: row.key_algorithm,
    csrDer: row.csr_der,
    certDer: row.cert_der,
    createdAt: fromText(row.created_at),
    activatedAt: fromNullableText(row.activated_at),
    active: row.active === 1,
  };
}

export function toProvisionerRecord(row: ProvisionerRow): ProvisionerRecord {
  return {
    name: row.name,
    type: row.type,
    publicJwk: row.public_jwk,
    policy: row.policy,
    options: row.options,
    createdAt: fromText(row.created_at),
  };
}

export function toCertificateRecord(row: CertificateRow): CertificateRecord {
  return {
    serial: row.serial,
    issuerId: row.issuer_id,
    subject: row.subject,
    names: JSON.parse(row.names) as string[],
    notBefore: fromText(row.not_before),
    notAfter: fromText(row.not_after),
    der: row.der,
    provisioner: row.provisioner,
    requester: row.requester,
    status: row.status,
    createdAt: fromText(row.created_at),
    issuedAt: fromNullableText(row.issued_at),
    renewedFrom: row.renewed_from,
    lineage: row.lineage,
    lineageStartedAt: fromText(row.lineage_started_at),
    spkiSha256: row.spki_sha256,
    ...(row.tbs_der === null || row.tbs_der === undefined ? {} : { tbsDer: row.tbs_der }),
  };
}

export function toAuditEntry(row: AuditRow): AuditEntry {
  return {
    at: fromText(row.at),
    action: row.action,
    actor: row.actor,
    serial: row.serial,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
  };
}
