import { AuthorityError } from '../errors.js';
import type { ProvisionerMaterial, ProvisionerType } from './types.js';

/** Accepts any JSON object: what the authority alone can say about ACME options. */
function anyObject(doc: unknown): Record<string, unknown> {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new AuthorityError('badProvisionerOptions', 'ACME provisioner options must be a JSON object');
  return doc as Record<string, unknown>;
}

/**
 * ACME (RFC 8555): the account proves each name by a challenge, so the type takes no tokens and
 * grants nothing here; the ACME front door authorizes and calls `issueForOrder`. Its certificates
 * renew by ACME, not mutual TLS, so expired authorizations are checked again.
 *
 * Its options (EAB, terms of service, rate limits) mean something only to the ACME front door,
 * which the authority may not import; the apps register the type with that door's parser
 * (`acmeProvisioner(parseAcmeOptions)`), so `provisioner add` refuses what the door would.
 */
export function acmeProvisioner<Options = Record<string, unknown>>(
  parseOptions: (doc: unknown) => Options = anyObject as (doc: unknown) => Options,
): ProvisionerType<Options> {
  return {
    type: 'acme',
    label: 'ACME',
    summary: 'acme (RFC 8555)',
    parse(material: ProvisionerMaterial) {
      if (material.publicJwk !== null)
        throw new AuthorityError(
          'badProvisionerOptions',
          'an ACME provisioner has no key: its accounts bring their own',
        );
      return parseOptions(material.options);
    },
    // Nothing for the authority to spend: an order finalizes once, by its own state (RFC 8555 §7.1.6).
    singleUse: false,
    mtlsRenewalByDefault: false,
    authenticateAgain: 'renew it over ACME (a new order), which checks its authorizations again',
  };
}
