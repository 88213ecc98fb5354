import type { AuditEntry, CertificateRecord, IssuerRecord, ProvisionerRecord } from '../contracts/records.js';
import { checkedLimit } from '../engine-rules.js';

// Rows as node-postgres returns them (snake_case, timestamptz as Date, bytea as Buffer, boolean
// as boolean, JSON as text) and their conversion to records: the counterpart of rows.ts.

export interface IssuerRow {
  id: string;
  name: string;
  sealed_key: Buffer;
  key_algorithm: string;
  csr_der: Buffer;
  cert_der: Buffer | null;
  created_at: Date;
  activated_at: Date | null;
  active: boolean;
}

export interface ProvisionerRow {
  name: string;
  type: string;
  public_jwk: string | null;
  policy: string;
  options: string;
  created_at: Date;
}

export interface CertificateRow {
  serial: string;
  issuer_id: string;
  subject: string;
  names: string;
  not_before: Date;
  not_after: Date;
  der: Buffer | null;
  provisioner: string;
  requester: string;
  status: 'reserved' | 'issued';
  created_at: Date;
  issued_at: Date | null;
  renewed_from: string | null;
  lineage: string;
  lineage_started_at: Date;
  spki_sha256: string | null;
  tbs_der: Buffer | null;
}

export interface AuditRow {
  at: Date;
  action: string;
  actor: string;
  serial: string | null;
  detail: string;
}

/** The certificate columns a record is read from (not `seq`, which only orders). */
export const certificateColumns = `serial, issuer_id, subject, names, not_before, not_after, der, provisioner, requester,
  status, created_at, issued_at, renewed_from, lineage, lineage_started_at, spki_sha256, tbs_der`;

export function toIssuerRecord(row: IssuerRow): IssuerRecord {
  return {
    id: row.id,
    name: row.name,
    sealedKey: row.sealed_key,
    keyAlgorithm: row.key_algorithm,
    csrDer: row.csr_der,
    certDer: row.cert_der,
    createdAt: row.created_at,
    activatedAt: row.activated_at,
    active: row.active,
  };
}

export function toProvisionerRecord(row: ProvisionerRow): ProvisionerRecord {
  return {
    name: row.name,
    type: row.type,
    publicJwk: row.public_jwk,
    policy: row.policy,
    options: row.options,
    createdAt: row.created_at,
  };
}

export function toCertificateRecord(row: CertificateRow): CertificateRecord {
  return {
    serial: row.serial,
    issuerId: row.issuer_id,
    subject: row.subject,
    names: JSON.parse(row.names) as string[],
    notBefore: row.not_before,
    notAfter: row.not_after,
    der: row.der,
    provisioner: row.provisioner,
    requester: row.requester,
    status: row.status,
    createdAt: row.created_at,
    issuedAt: row.issued_at,
    renewedFrom: row.renewed_from,
    lineage: row.lineage,
    lineageStartedAt: row.lineage_started_at,
    spkiSha256: row.spki_sha256,
    ...(row.tbs_der === null ? {} : { tbsDer: row.tbs_der }),
  };
}

export function toAuditEntry(row: AuditRow): AuditEntry {
  return {
    at: row.at,
    action: row.action,
    actor: row.actor,
    serial: row.serial,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
  };
}

/** A LIMIT for PostgreSQL: a non-negative integer, or null (`LIMIT NULL`: no limit) when none is given. */
export function checkLimit(limit: number | undefined): number | null {
  return checkedLimit(limit) ?? null; // PostgreSQL: LIMIT NULL means no limit
}
