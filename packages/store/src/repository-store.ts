import type { BlockedKeyRecord } from './contracts/revocations.js';
import type { AcmeEngine, CoordinationEngine, RevocationsEngine, Store } from './contracts/store.js';
import type {
  AuditEntry,
  CertificateRecord,
  CertificatesSince,
  IssuerRecord,
  ListAuditOptions,
  ListCertificatesOptions,
  NewIssuer,
  NewProvisioner,
  ProvisionerRecord,
  ReserveCertificateInput,
} from './records.js';

/** What each engine's repositories offer, per concern; the store only hands calls to them. */
export interface StoreParts {
  issuers: Pick<
    Store,
    | 'createIssuer'
    | 'setIssuerCertificate'
    | 'getIssuer'
    | 'getIssuerByName'
    | 'getActiveIssuer'
    | 'listIssuers'
    | 'activateIssuer'
    | 'lastCertificateExpiry'
    | 'addRoot'
    | 'listRoots'
  >;
  provisioners: Pick<Store, 'addProvisioner' | 'getProvisioner' | 'listProvisioners'>;
  certificates: Pick<
    Store,
    | 'reserveCertificate'
    | 'completeCertificate'
    | 'getCertificate'
    | 'listLineage'
    | 'listCertificates'
    | 'pruneTokenUses'
    | 'countCertificatesSince'
  >;
  audit: Pick<Store, 'appendAudit' | 'listAudit'>;
  settings: Pick<Store, 'getSetting' | 'setSetting' | 'settingOnce'>;
  revocations: RevocationsEngine;
  acme: AcmeEngine;
  coordination: CoordinationEngine;
}

/**
 * The `Store` both engines present: every call handed to the repository of its concern, written
 * once. An engine opens its connection, builds its repositories, and adds what only it does
 * (closing, `counts`, SQLite's backup).
 */
export abstract class RepositoryStore implements Store {
  abstract readonly engine: Store['engine'];
  readonly revocations: RevocationsEngine;
  readonly acme: AcmeEngine;
  readonly coordination: CoordinationEngine;

  protected constructor(private readonly parts: StoreParts) {
    this.revocations = parts.revocations;
    this.acme = parts.acme;
    this.coordination = parts.coordination;
  }

  abstract close(): Promise<void>;
  abstract counts(): Promise<Record<string, number>>;

  // ── issuers and roots ──────────────────────────────────────────────────────────────────────

  createIssuer(r: NewIssuer): Promise<void> {
    return this.parts.issuers.createIssuer(r);
  }
  setIssuerCertificate(id: string, certDer: Uint8Array): Promise<void> {
    return this.parts.issuers.setIssuerCertificate(id, certDer);
  }
  getIssuer(id: string): Promise<IssuerRecord | null> {
    return this.parts.issuers.getIssuer(id);
  }
  getIssuerByName(name: string): Promise<IssuerRecord | null> {
    return this.parts.issuers.getIssuerByName(name);
  }
  getActiveIssuer(): Promise<IssuerRecord | null> {
    return this.parts.issuers.getActiveIssuer();
  }
  listIssuers(): Promise<IssuerRecord[]> {
    return this.parts.issuers.listIssuers();
  }
  activateIssuer(id: string, at: Date): Promise<void> {
    return this.parts.issuers.activateIssuer(id, at);
  }
  lastCertificateExpiry(issuerId: string, exceptProvisioners: readonly string[] = []): Promise<Date | null> {
    return this.parts.issuers.lastCertificateExpiry(issuerId, exceptProvisioners);
  }
  addRoot(certDer: Uint8Array, at: Date): Promise<string> {
    return this.parts.issuers.addRoot(certDer, at);
  }
  listRoots(): Promise<Uint8Array[]> {
    return this.parts.issuers.listRoots();
  }

  // ── provisioners ───────────────────────────────────────────────────────────────────────────

  addProvisioner(r: NewProvisioner): Promise<void> {
    return this.parts.provisioners.addProvisioner(r);
  }
  getProvisioner(name: string): Promise<ProvisionerRecord | null> {
    return this.parts.provisioners.getProvisioner(name);
  }
  listProvisioners(): Promise<ProvisionerRecord[]> {
    return this.parts.provisioners.listProvisioners();
  }

  // ── certificates and token uses ────────────────────────────────────────────────────────────

  reserveCertificate(input: ReserveCertificateInput): Promise<void> {
    return this.parts.certificates.reserveCertificate(input);
  }
  completeCertificate(serial: string, der: Uint8Array, issuedAt: Date): Promise<void> {
    return this.parts.certificates.completeCertificate(serial, der, issuedAt);
  }
  getCertificate(serial: string): Promise<CertificateRecord | null> {
    return this.parts.certificates.getCertificate(serial);
  }
  listLineage(lineage: string): Promise<CertificateRecord[]> {
    return this.parts.certificates.listLineage(lineage);
  }
  listCertificates(opts: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    return this.parts.certificates.listCertificates(opts);
  }
  pruneTokenUses(now: Date): Promise<number> {
    return this.parts.certificates.pruneTokenUses(now);
  }
  countCertificatesSince(provisioner: string, requester: string, since: Date): Promise<CertificatesSince> {
    return this.parts.certificates.countCertificatesSince(provisioner, requester, since);
  }
  /** The block on a public key (by key digest), or null when the key is not blocked. */
  getBlockedKey(spkiSha256: string): Promise<BlockedKeyRecord | null> {
    return this.parts.revocations.blockedKey(spkiSha256);
  }

  // ── audit and settings ─────────────────────────────────────────────────────────────────────

  appendAudit(e: AuditEntry): Promise<void> {
    return this.parts.audit.appendAudit(e);
  }
  listAudit(opts: ListAuditOptions = {}): Promise<AuditEntry[]> {
    return this.parts.audit.listAudit(opts);
  }
  getSetting(key: string): Promise<string | null> {
    return this.parts.settings.getSetting(key);
  }
  setSetting(key: string, value: string): Promise<void> {
    return this.parts.settings.setSetting(key, value);
  }
  settingOnce(key: string, value: string): Promise<string> {
    return this.parts.settings.settingOnce(key, value);
  }
}
