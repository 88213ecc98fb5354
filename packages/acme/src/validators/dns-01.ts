import { createHash } from 'node:crypto';
import { AcmeError } from '../errors.js';
import { preview } from './describe.js';
import type { ChallengeToValidate, ValidationContext } from './types.js';

/**
 * RFC 8555 §8.4: some TXT record at `_acme-challenge.NAME` (its strings joined) must be
 * base64url(SHA-256(key authorization)). IP identifiers have no such name (RFC 8738 §7).
 */
export async function validateDns01(challenge: ChallengeToValidate, ctx: ValidationContext): Promise<void> {
  if (challenge.identifier.type !== 'dns')
    throw new AcmeError(
      'malformed',
      `dns-01 cannot validate the IP address ${challenge.identifier.value}; use http-01 or tls-alpn-01`,
    );
  const name = `_acme-challenge.${challenge.identifier.value}`;
  const expected = createHash('sha256').update(challenge.keyAuthorization).digest('base64url');
  const records = await ctx.lookup.txt(name, ctx.deadline);
  if (records.length === 0)
    throw new AcmeError('dns', `no TXT record found at ${name}; expected one holding ${JSON.stringify(expected)}`);
  if (records.includes(expected)) return;
  // What the records hold goes to the log only: a CNAME can lead the CA's resolver to a record
  // the client could not read itself (an internal zone), like an http-01 redirect.
  const found = new Error(`found ${records.map((r) => preview(r)).join(', ')}`);
  throw new AcmeError(
    'incorrectResponse',
    `no TXT record at ${name} holds the expected ${JSON.stringify(expected)} (${records.length} found; what they hold is never shown)`,
    { cause: found },
  );
}
