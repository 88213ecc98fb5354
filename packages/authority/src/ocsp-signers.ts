import { Buffer } from 'node:buffer';
import {
  createSigner,
  generateKeyPair,
  importPrivateKey,
  parseCertificate,
  publicKeyOf,
  type CertificateInfo,
  type OcspResponder,
} from '@shortleaf/pki';
import type { Authority } from './authority.js';
import type { LoadedIssuer } from './issuer.js';
import type { KeySealer, Logger, RevocationStore } from './ports.js';

/** An OCSP responder identity plus its certificate's validity, which bounds every nextUpdate. */
export interface ManagedResponder extends OcspResponder {
  certificate: CertificateInfo;
}

export const ocspSignerSealContext = (id: string): string => `ocsp-signer:${id}`;

/** A failed rotation is tried again after this. */
const ROTATION_RETRY_MS = 60_000;

/**
 * Keeps the intermediate's delegated OCSP responder current: a fresh in-memory key and a short-lived
 * certificate from the authority, rotated at two thirds of its life. The key is never stored.
 */
export function createOcspSignerManager(opts: {
  authority: Authority;
  /** The intermediate the responder answers for; the active one when absent. */
  issuer?: LoadedIssuer;
  lifetimeMs: number;
  logger: Logger;
  onRotate(): void;
}) {
  let current: ManagedResponder | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function rotate(): Promise<ManagedResponder> {
    const { privateKey } = generateKeyPair('EC-P256');
    const issued = await opts.authority.issueOcspSignerCertificate({
      publicKey: publicKeyOf(privateKey),
      lifetimeMs: opts.lifetimeMs,
      ...(opts.issuer === undefined ? {} : { issuer: opts.issuer }),
    });
    current = {
      signer: createSigner(privateKey),
      certificateDer: issued.der,
      certificate: parseCertificate(issued.der),
    };
    opts.logger.info('ocsp_signer_rotated', {
      issuer: (opts.issuer ?? opts.authority.issuer).name,
      serial: issued.serial,
      notAfter: issued.notAfter.toISOString(),
    });
    opts.onRotate();
    schedule(issued.notAfter);
    return current;
  }

  function schedule(notAfter: Date): void {
    if (stopped) return;
    const delay = Math.max(1_000, notAfter.getTime() - Date.now() - opts.lifetimeMs / 3);
    // Retried every minute for as long as it fails (the database down for a while): the responder
    // certificate in use stays valid for a third of its lifetime after rotation falls due.
    const attempt = (): void =>
      void rotate().catch((err: Error) => {
        opts.logger.error('ocsp_signer_rotation_failed', { error: err.message, retryInMs: ROTATION_RETRY_MS });
        if (stopped) return;
        timer = setTimeout(attempt, ROTATION_RETRY_MS);
        timer.unref();
      });
    timer = setTimeout(attempt, Math.min(delay, 2 ** 31 - 1));
    timer.unref();
  }

  return {
    start: rotate,
    current(): ManagedResponder {
      if (current === undefined) throw new Error('the OCSP signer manager has not started');
      return current;
    },
    stop(): void {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/**
 * Loads the responder the root delegated at the offline ceremony, which answers for the
 * intermediate's own status: the newest one with its certificate, so a key made for the next
 * ceremony does not hide the one in use. Null when the ceremony made none (requests for it then
 * get `unauthorized`). Its key is sealed in the database like the intermediate's.
 */
export async function loadRootDelegatedResponder(
  store: RevocationStore,
  sealer: KeySealer,
  issuerId: string,
  root: CertificateInfo,
): Promise<(ManagedResponder & { id: string }) | null> {
  const row = await store.getOcspSigner(issuerId, { certified: true });
  if (row === null || row.certDer === null) return null;
  const certificate = parseCertificate(row.certDer);
  const signer = createSigner(importPrivateKey(await sealer.unseal(row.sealedKey, ocspSignerSealContext(row.id))));
  if (!Buffer.from(signer.publicKey.spki).equals(certificate.publicKey.spki))
    throw new Error('the root-delegated OCSP signer key does not match its certificate');
  if (!Buffer.from(certificate.issuerDer).equals(root.subjectDer))
    throw new Error('the root-delegated OCSP signer was not issued by the root');
  return { id: row.id, signer, certificateDer: row.certDer, certificate };
}
