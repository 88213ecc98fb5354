import { Buffer } from 'node:buffer';
import {
  PkiError,
  encodeName,
  leafDraft,
  ocspSignerDraft,
  nameToString,
  newSerial,
  normalizeSerial,
  parseCertificate,
  parseCsr,
  parseName,
  policyRefusal,
  prepareCertificate,
  signPrepared,
  type CertificateInfo,
  type ParsedCsr,
  type PreparedCertificate,
  type PublicKeyInfo,
  type PublicUrls,
  type SubjectName,
} from '@shortleaf/pki';
import { StoreError, keyDigest } from '@shortleaf/store/contracts';
import { AuthorityError } from './errors.js';
import type { LoadedIssuer } from './issuer.js';
import { checkIdentityLimit } from './identity-limit.js';
import { checkRenewalDoor } from './lineage.js';
import { parsePolicy, type Policy } from './policy.js';
import { NO_TELEMETRY, type AuthorityStore, type Clock, type FrontDoor, type Logger, type Telemetry } from './ports.js';
import { checkCsrNames, checkKey, checkNames, resolveLifetime } from './request-checks.js';
import { fromStoreError } from './store-errors.js';
import { BUILT_IN_PROVISIONERS, createTokenAuthorizer, type ProvisionerRegistry } from './provisioners/index.js';
import { MAX_TOKEN_NAMES } from './token.js';
import { applyTemplateLifetime, renderTemplateUris, type CertificateTemplate } from './template.js';

/** What every front door hands back to its client. */
export interface IssuedCertificate {
  serial: string;
  der: Uint8Array;
  /** Issuing intermediates, nearest first; never the root. */
  chain: Uint8Array[];
  notBefore: Date;
  notAfter: Date;
  names: SubjectName[];
}

export interface AuthorityOptions {
  store: AuthorityStore;
  /** The intermediate that signs at first; `activate` switches to another without a restart. */
  issuer: LoadedIssuer;
  clock: Clock;
  random(n: number): Uint8Array;
  /** Where leaves point relying parties; a function gives each intermediate its own CRL and caIssuers URLs. */
  urls: PublicUrls | ((issuer: LoadedIssuer) => PublicUrls);
  logger: Logger;
  /** Counts issuances and their latency; nothing is recorded when absent. */
  telemetry?: Pick<Telemetry, 'issued'>;
  /** Most names a token may authorise (`limits.maxNames`); MAX_TOKEN_NAMES when absent. */
  maxNames?: number;
  /** Per-provisioner certificate templates (`templates` in the config), checked at start-up. */
  templates?: ReadonlyMap<string, CertificateTemplate>;
  /** The provisioner types credentials are checked by; BUILT_IN_PROVISIONERS when absent. */
  provisioners?: ProvisionerRegistry;
}

/** RFC 5280 allows clocks to disagree; one minute of backdating keeps fresh certificates usable. */
export const BACKDATE_MS = 60_000;
const wholeSecond = (ms: number): number => Math.floor(ms / 1000) * 1000;

/**
 * Only DNS names go in the subject CN. OpenSSL checks a hostname-like CN against an issuer's DNS
 * name constraints when the SAN has no DNS name, so an IP in the CN could fail verification.
 */
const commonNameFor = (subject: SubjectName): string | null => (subject.kind === 'dns' ? subject.value : null);

/** The provisioner name recorded for the CA's own HTTPS certificates. */
export const INTERNAL_PROVISIONER = 'shortleaf:server';
/** The provisioner name recorded for delegated OCSP responder certificates. */
export const OCSP_PROVISIONER = 'shortleaf:ocsp';
const OCSP_SIGNER_CN = 'Shortleaf OCSP Responder';

/**
 * The only code that signs leaves. Every front door (REST sign, mTLS renew, ACME finalize) calls it,
 * and it always runs Boulder's order: authenticate, authorize against policy, draft from the
 * profile, lint, record the intent (and burn the token) in one transaction, sign, record the result.
 */
export function createAuthority(opts: AuthorityOptions) {
  const { store, clock, logger } = opts;
  const telemetry = opts.telemetry ?? NO_TELEMETRY;
  const urlsFor = typeof opts.urls === 'function' ? opts.urls : () => opts.urls as PublicUrls;
  // Read once per issuance: a certificate is drafted, linted, recorded and signed by one issuer
  // even if another is activated meanwhile.
  let active = opts.issuer;
  const chains = new Map<string, Uint8Array[]>([[active.id, [active.certificate.der]]]);
  const policies = new Map<string, { text: string; policy: Policy }>();

  // The authority only asks the provisioner a token names which names it grants and what to spend.
  const provisioners = opts.provisioners ?? BUILT_IN_PROVISIONERS;
  const tokens = createTokenAuthorizer({
    registry: provisioners,
    getProvisioner: (name) => store.getProvisioner(name),
    listProvisioners: () => store.listProvisioners(),
    now: () => clock.now(),
    maxNames: opts.maxNames ?? MAX_TOKEN_NAMES,
  });

  async function policyOf(name: string): Promise<Policy> {
    const row = await store.getProvisioner(name);
    if (row === null) throw new AuthorityError('unknownProvisioner', `no provisioner named ${JSON.stringify(name)}`);
    const cached = policies.get(name);
    if (cached !== undefined && cached.text === row.policy) return cached.policy;
    // A template's lifetime replaces the policy's default for that provisioner.
    const policy = applyTemplateLifetime(
      parsePolicy(JSON.parse(row.policy), { stored: true }),
      opts.templates?.get(name),
    );
    policies.set(name, { text: row.policy, policy });
    return policy;
  }

  interface IssueRequest {
    profile?: 'leaf' | 'ocsp-signer';
    /** The active intermediate when absent. */
    issuer?: LoadedIssuer;
    provisioner: string;
    requester: string;
    /** Where the request came from, when `requester` names an identity instead; kept in the audit entry. */
    address?: string;
    actor: string;
    action: 'issue' | 'renew';
    frontDoor: FrontDoor;
    /** `performance.now()` when the front door called, for the latency histogram. */
    started: number;
    commonName: string | null;
    names: SubjectName[];
    publicKey: PublicKeyInfo;
    lifetimeMs: number;
    maxLifetimeMs?: number;
    /** Subject attributes besides the CN, from the provisioner's template. */
    subject?: CertificateTemplate['subject'];
    /** Extended key usages from the provisioner's template; the leaf default when absent. */
    extKeyUsage?: CertificateTemplate['extKeyUsage'];
    tokenUse?: { provisioner: string; jti: string; expiresAt: Date };
    /** For a renewal: the certificate renewed, and the lineage it continues. Absent, a new lineage starts now. */
    lineage?: { renewedFrom: string; lineage: string; startedAt: Date };
    now: Date;
  }

  async function issue(req: IssueRequest): Promise<IssuedCertificate> {
    const issuer = req.issuer ?? active;
    const nowS = wholeSecond(req.now.getTime());
    if (nowS >= issuer.certificate.notAfter.getTime()) {
      throw new AuthorityError(
        'issuerUnavailable',
        `the intermediate expired at ${issuer.certificate.notAfter.toISOString()}; import a new one`,
      );
    }
    const notBefore = new Date(Math.max(nowS - BACKDATE_MS, issuer.certificate.notBefore.getTime()));
    const notAfter = new Date(Math.min(nowS + req.lifetimeMs, issuer.certificate.notAfter.getTime()));
    for (let attempt = 0; ; attempt++) {
      const serial = newSerial(opts.random);
      const draft =
        req.profile === 'ocsp-signer'
          ? ocspSignerDraft({
              serial: serial.bytes,
              subjectDer: encodeName({ commonName: req.commonName, organization: 'Shortleaf' }),
              commonName: req.commonName ?? OCSP_SIGNER_CN,
              publicKey: req.publicKey,
              notBefore,
              notAfter,
              issuer: issuer.info,
            })
          : leafDraft({
              serial: serial.bytes,
              commonName: req.commonName,
              names: req.names,
              publicKey: req.publicKey,
              notBefore,
              notAfter,
              issuer: issuer.info,
              urls: urlsFor(issuer),
              subject: req.subject,
              extKeyUsage: req.extKeyUsage,
            });
      // Boulder's prepare/issue: encode once, lint what the bytes parse back to, record them with
      // the reservation, and sign exactly them.
      let prepared: PreparedCertificate;
      try {
        prepared = prepareCertificate(draft, issuer.signer, {
          issuer: issuer.info,
          authorizedNames: req.names,
          maxLifetimeMs: req.maxLifetimeMs,
        });
      } catch (cause) {
        logger.error('lint_failed', { serial: serial.hex, reason: (cause as Error).message, bug: true });
        throw new AuthorityError('internal', 'the certificate failed its pre-signing checks; nothing was issued', {
          cause,
        });
      }
      const names = req.names.map(nameToString);
      const lineage = {
        renewedFrom: req.lineage?.renewedFrom ?? null,
        lineage: req.lineage?.lineage ?? serial.hex,
        lineageStartedAt: req.lineage?.startedAt ?? req.now,
        spkiSha256: keyDigest(req.publicKey.keyObject),
      };
      try {
        await store.reserveCertificate({
          certificate: {
            serial: serial.hex,
            issuerId: issuer.id,
            subject: req.commonName ?? names[0] ?? '',
            names,
            notBefore,
            notAfter,
            provisioner: req.provisioner,
            requester: req.requester,
            createdAt: req.now,
            ...lineage,
            tbsDer: prepared.tbs,
          },
          ...(req.tokenUse === undefined ? {} : { tokenUse: req.tokenUse }),
          audit: {
            at: req.now,
            action: req.action,
            actor: req.actor,
            serial: serial.hex,
            detail: {
              names,
              notAfter: notAfter.toISOString(),
              requester: req.requester,
              ...(req.address === undefined ? {} : { address: req.address }),
            },
          },
        });
      } catch (cause) {
        if (cause instanceof StoreError && cause.code === 'serialCollision' && attempt < 3) continue;
        throw fromStoreError(cause, { action: 'issue' });
      }
      const der = signPrepared(prepared, issuer.signer);
      try {
        await store.completeCertificate(serial.hex, der, clock.now());
      } catch (cause) {
        throw fromStoreError(cause, { action: 'issue' });
      }
      telemetry.issued({
        provisioner: req.provisioner,
        frontDoor: req.frontDoor,
        action: req.action,
        ms: performance.now() - req.started,
      });
      return { serial: serial.hex, der, chain: [issuer.certificate.der], notBefore, notAfter, names: req.names };
    }
  }

  /** Signs a CSR authorised by a one-time provisioner token (`POST /api/v1/sign`). */
  async function sign(input: {
    csr: unknown;
    token: unknown;
    notAfter?: unknown;
    audiences: readonly string[];
    requester: string;
  }): Promise<IssuedCertificate> {
    const started = performance.now();
    const claims = await tokens.authorizeSign(input.token, input.audiences);
    // A reusable bearer token's certificates are recorded under the identity it names, so the
    // limit on that identity is counted from the database by whichever instance is asked.
    const identity = claims.perIdentity?.identity;
    const limit = claims.perIdentity?.limit ?? null;
    if (identity !== undefined && limit !== null)
      await checkIdentityLimit(store, { provisioner: claims.provisioner, identity, limit }, clock.now());
    const policy = await policyOf(claims.provisioner);
    if (typeof input.csr !== 'string') throw new PkiError('badCsr', 'csr must be a PEM string');
    const csr = parseCsr(input.csr);
    checkKey(csr.publicKey, policy, claims.provisioner);
    checkNames(claims.names, policy, claims.provisioner);
    // The template's URIs are built from the token's signed claims, so the credential authorised
    // them too; they answer to the same name policy as the token's own names.
    const template = opts.templates?.get(claims.provisioner);
    const seen = new Set(claims.names.map(nameToString));
    const templated =
      template === undefined
        ? []
        : renderTemplateUris(template, claims.claims).filter((n) => !seen.has(nameToString(n)));
    checkNames(templated, policy, claims.provisioner);
    const names = [...claims.names, ...templated];
    // A credential that states only who its holder is (a service-account or ID token) gets names
    // from the template alone; a template that gives none is the operator's to fix.
    if (names.length === 0)
      throw new AuthorityError(
        'noNames',
        `provisioner ${claims.provisioner}'s tokens name no certificate names; its template (templates.${claims.provisioner}) must give uris, dnsNames or emails`,
      );
    checkCsrNames(csr, names);
    const now = clock.now();
    const lifetimeMs = resolveLifetime(input.notAfter, policy, now);
    return issue({
      provisioner: claims.provisioner,
      requester: identity ?? input.requester,
      ...(identity === undefined ? {} : { address: input.requester }),
      actor: `provisioner:${claims.provisioner}`,
      action: 'issue',
      frontDoor: 'rest',
      started,
      commonName: commonNameFor(claims.subject ?? names.find((n) => n.kind === 'dns') ?? names[0]!),
      names,
      publicKey: csr.publicKey,
      lifetimeMs,
      maxLifetimeMs: policy.maxLifetimeMs,
      subject: template?.subject,
      extKeyUsage: template?.extKeyUsage,
      ...(claims.use === null ? {} : { tokenUse: claims.use }),
      now,
    });
  }

  /**
   * Renews the certificate a client proved over mutual TLS: same names, fresh lifetime of the
   * same length (bounded by today's policy), same key unless a CSR asks to rekey. Only
   * certificates we issued, byte for byte, and still valid, renew.
   */
  async function renew(input: {
    clientCertificate: Uint8Array | null;
    csr?: unknown;
    requester: string;
  }): Promise<IssuedCertificate> {
    const started = performance.now();
    if (input.clientCertificate === null) {
      throw new AuthorityError(
        'clientCertificateRequired',
        'renewal needs the current certificate presented over mutual TLS',
      );
    }
    let current: CertificateInfo;
    try {
      current = parseCertificate(input.clientCertificate);
    } catch (cause) {
      throw new AuthorityError('certificateUnknown', 'the client certificate cannot be parsed', { cause });
    }
    const row = await store.getCertificate(current.serial);
    if (row === null || row.der === null || !Buffer.from(row.der).equals(input.clientCertificate)) {
      throw new AuthorityError('certificateUnknown', 'the client certificate was not issued by this CA');
    }
    await assertNotRevoked(row.serial);
    const now = clock.now();
    if (now.getTime() > row.notAfter.getTime())
      throw new AuthorityError('certificateExpired', 'the client certificate has expired; get a new one with a token');
    if (now.getTime() < row.notBefore.getTime())
      throw new AuthorityError('certificateExpired', 'the client certificate is not valid yet');
    const policy = await policyOf(row.provisioner);
    checkRenewalDoor(row, policy, (await store.getProvisioner(row.provisioner))?.type ?? null, now, provisioners);
    const names = row.names.map((n) => parseName(n.slice(n.indexOf(':') + 1)));
    checkNames(names, policy, row.provisioner);
    let publicKey = current.publicKey;
    if (input.csr !== undefined && input.csr !== null) {
      if (typeof input.csr !== 'string') throw new PkiError('badCsr', 'csr must be a PEM string');
      const csr = parseCsr(input.csr);
      checkCsrNames(csr, names);
      publicKey = csr.publicKey;
    }
    checkKey(publicKey, policy, row.provisioner);
    const original = row.notAfter.getTime() - row.notBefore.getTime() - BACKDATE_MS;
    const lifetimeMs = Math.min(Math.max(original, policy.minLifetimeMs), policy.maxLifetimeMs);
    return issue({
      provisioner: row.provisioner,
      requester: input.requester,
      actor: `certificate:${row.serial}`,
      action: 'renew',
      frontDoor: 'rest',
      started,
      commonName: current.commonName,
      names,
      publicKey,
      lifetimeMs,
      maxLifetimeMs: policy.maxLifetimeMs,
      // Today's template, not the old certificate's: its URIs are already among the recorded names.
      subject: opts.templates?.get(row.provisioner)?.subject,
      extKeyUsage: opts.templates?.get(row.provisioner)?.extKeyUsage,
      lineage: { renewedFrom: row.serial, lineage: row.lineage, startedAt: row.lineageStartedAt },
      now,
    });
  }

  /**
   * Refuses names an ACME provisioner's policy does not allow, before an order is created, so a
   * client learns at `newOrder` rather than at finalize. Returns the refusal per name (null if
   * allowed) so the ACME front door can send one subproblem per identifier.
   */
  async function refuseNames(provisioner: string, names: readonly SubjectName[]): Promise<Array<string | null>> {
    const policy = await policyOf(provisioner);
    return names.map((n) => policyRefusal(n, policy.names));
  }

  /**
   * Refuses a requested notAfter the provisioner's policy would refuse at issuance, so an ACME
   * order that could never be finalized is refused when it is created.
   */
  async function checkLifetime(provisioner: string, notAfter: string): Promise<void> {
    resolveLifetime(notAfter, await policyOf(provisioner), clock.now());
  }

  /**
   * Issues for an ACME order whose identifiers the account has proven control of. The ACME front
   * door has parsed the CSR (with pki's `parseCsr`, which checks its signature) and checked that it
   * names exactly the order's identifiers; the policy, key and name checks run again here because
   * this is the one place that decides what gets signed.
   */
  async function issueForOrder(input: {
    provisioner: string;
    account: string;
    order: string;
    csr: ParsedCsr;
    names: SubjectName[];
    notAfter?: string;
    requester: string;
  }): Promise<IssuedCertificate> {
    const started = performance.now();
    const policy = await policyOf(input.provisioner);
    const csr = input.csr;
    checkKey(csr.publicKey, policy, input.provisioner);
    checkNames(input.names, policy, input.provisioner);
    checkCsrNames(csr, input.names);
    const now = clock.now();
    const lifetimeMs = resolveLifetime(input.notAfter, policy, now);
    const first = input.names[0];
    return issue({
      provisioner: input.provisioner,
      requester: input.requester,
      actor: `acme-account:${input.account}`,
      action: 'issue',
      frontDoor: 'acme',
      started,
      commonName: first === undefined ? null : commonNameFor(first),
      names: input.names,
      publicKey: csr.publicKey,
      lifetimeMs,
      maxLifetimeMs: policy.maxLifetimeMs,
      // Subject fields and EKUs only: an ACME template has no URIs (serve refuses them), since
      // every name here was proven by a challenge. Its lifetime is already the policy's default.
      subject: opts.templates?.get(input.provisioner)?.subject,
      extKeyUsage: opts.templates?.get(input.provisioner)?.extKeyUsage,
      now,
    });
  }

  /** Issues the CA's own HTTPS certificate; recorded and audited like any other. */
  async function issueServerCertificate(input: {
    publicKey: PublicKeyInfo;
    names: string[];
    lifetimeMs: number;
  }): Promise<IssuedCertificate> {
    const names = input.names.map((n) => parseName(n));
    return issue({
      provisioner: INTERNAL_PROVISIONER,
      requester: 'shortleaf serve',
      actor: INTERNAL_PROVISIONER,
      action: 'issue',
      frontDoor: 'internal',
      started: performance.now(),
      commonName: names[0] === undefined ? null : commonNameFor(names[0]),
      names,
      publicKey: input.publicKey,
      lifetimeMs: input.lifetimeMs,
      now: clock.now(),
    });
  }

  /**
   * Issues a delegated OCSP responder certificate (RFC 6960 §4.2.2.2) for a key held in memory,
   * from the given intermediate (a retired one still answers for its certificates) or the active one.
   */
  async function issueOcspSignerCertificate(input: {
    publicKey: PublicKeyInfo;
    lifetimeMs: number;
    issuer?: LoadedIssuer;
  }): Promise<IssuedCertificate> {
    return issue({
      profile: 'ocsp-signer',
      ...(input.issuer === undefined ? {} : { issuer: input.issuer }),
      provisioner: OCSP_PROVISIONER,
      requester: 'shortleaf serve',
      actor: OCSP_PROVISIONER,
      action: 'issue',
      frontDoor: 'internal',
      started: performance.now(),
      commonName: OCSP_SIGNER_CN,
      names: [],
      publicKey: input.publicKey,
      lifetimeMs: input.lifetimeMs,
      now: clock.now(),
    });
  }

  /**
   * Refuses renewal of a revoked certificate. Checked after the certificate is known to be ours,
   * so a foreign certificate still gets `certificateUnknown`.
   */
  async function assertNotRevoked(serial: string): Promise<void> {
    const revoked = await store.revocations.get(serial);
    if (revoked !== null)
      throw new AuthorityError(
        'certificateRevoked',
        `certificate ${serial} was revoked (${revoked.reason}) at ${revoked.revokedAt.toISOString()}; it cannot renew`,
      );
  }

  /**
   * Decides who may revoke a serial: the holder of that very certificate over mutual TLS
   * (self-revocation), or a one-time token from the provisioner that issued it whose `sub` is the
   * serial. Returns the actor for the audit log and the token use to spend atomically.
   */
  async function authorizeRevocation(input: {
    serial: string;
    token: unknown;
    clientCertificate: Uint8Array | null;
    audiences: readonly string[];
  }): Promise<{ actor: string; tokenUse?: { provisioner: string; jti: string; expiresAt: Date }; keyProven: boolean }> {
    const row = await store.getCertificate(input.serial);
    if (row === null || row.der === null)
      throw new AuthorityError('certificateNotFound', `no certificate with serial ${input.serial} was issued here`);
    if (input.token === undefined || input.token === null) {
      if (input.clientCertificate === null)
        throw new AuthorityError(
          'clientCertificateRequired',
          'revocation needs a token, or the certificate itself presented over mutual TLS',
        );
      if (!Buffer.from(row.der).equals(input.clientCertificate))
        throw new AuthorityError('notAuthorized', 'over mutual TLS a certificate can revoke only itself');
      // The TLS handshake proved the client holds the certificate's key.
      return { actor: `certificate:${row.serial}`, keyProven: true };
    }
    const claims = await tokens.authorizeRevoke(input.token, input.audiences);
    if (normalizeSerial(claims.serial) !== row.serial)
      throw new AuthorityError('tokenMalformed', 'the token "sub" must be the serial being revoked');
    if (claims.provisioner !== row.provisioner)
      throw new AuthorityError(
        'notAuthorized',
        `provisioner ${claims.provisioner} did not issue certificate ${row.serial}`,
      );
    return {
      actor: `provisioner:${claims.provisioner}`,
      ...(claims.use === null ? {} : { tokenUse: claims.use }),
      keyProven: false,
    };
  }

  /**
   * Switches new issuance to another intermediate at once; issuances already under way finish
   * with the one they started with. Used by `serve` when `shortleaf intermediate activate` runs.
   */
  function activate(next: LoadedIssuer): void {
    active = next;
    chains.set(next.id, [next.certificate.der]);
  }

  /** The chain (issuing intermediate, never the root) of a certificate we issued, by its issuer id. */
  async function chainFor(issuerId: string): Promise<Uint8Array[]> {
    const known = chains.get(issuerId);
    if (known !== undefined) return known;
    const row = await store.getIssuer(issuerId);
    if (row === null || row.certDer === null)
      throw new AuthorityError('internal', `issuer ${issuerId} of a recorded certificate is missing`);
    const chain = [row.certDer];
    chains.set(issuerId, chain);
    return chain;
  }

  return {
    sign,
    renew,
    refuseNames,
    checkLifetime,
    issueForOrder,
    issueServerCertificate,
    issueOcspSignerCertificate,
    authorizeRevocation,
    activate,
    chainFor,
    /** The intermediate that signs new certificates now. */
    get issuer(): LoadedIssuer {
      return active;
    },
    /** The active intermediate's chain, what new certificates come with. */
    get chain(): Uint8Array[] {
      return chains.get(active.id)!;
    },
  };
}

export type Authority = ReturnType<typeof createAuthority>;
