import { AuthorityError } from './errors.js';
import { mtlsRenewalAllowed, type Policy } from './policy.js';
import type { CertificateRow } from './ports.js';
import { BUILT_IN_PROVISIONERS, type ProvisionerRegistry } from './provisioners/index.js';

const formatAge = (ms: number): string =>
  ms % 86_400_000 === 0 ? `${ms / 86_400_000} d` : `${Math.round(ms / 60_000)} min`;

/**
 * Decides whether a certificate may renew over mutual TLS (DESIGN.md, "Lineage"): only if its
 * provisioner allows that door (an ACME certificate renews by ACME, where its authorizations are
 * checked again), and only while its lineage is younger than the provisioner's `maxLineageAge`.
 * After that the holder presents its original kind of credential again, so a stolen key cannot
 * keep itself current forever unnoticed. `provisionerType` is null for the CA's own provisioners.
 */
export function checkRenewalDoor(
  row: CertificateRow,
  policy: Policy,
  provisionerType: string | null,
  now: Date,
  registry: ProvisionerRegistry = BUILT_IN_PROVISIONERS,
): void {
  // What a holder does instead of renewing is its provisioner type's to say.
  const instead =
    (provisionerType === null ? undefined : registry.find(provisionerType)?.authenticateAgain) ??
    'get a new certificate from its provisioner';
  if (provisionerType !== null && !mtlsRenewalAllowed(policy, provisionerType, registry)) {
    throw new AuthorityError(
      'renewalNotAllowed',
      `certificate ${row.serial} was issued by ${provisionerType} provisioner ${row.provisioner}, whose certificates do not renew over mutual TLS; ${instead}`,
    );
  }
  if (now.getTime() > row.lineageStartedAt.getTime() + policy.maxLineageAgeMs) {
    throw new AuthorityError(
      'lineageExpired',
      `certificate ${row.serial} continues a lineage started at ${row.lineageStartedAt.toISOString()}, and provisioner ${row.provisioner} allows renewal for ${formatAge(policy.maxLineageAgeMs)} (maxLineageAge) after its holder last authenticated; ${instead}`,
    );
  }
}
