import { readFileSync } from 'node:fs';
import type { JWK } from 'jose';
import { REGISTERED_CLAIMS, mintToken, revokeAudience } from '@shortleaf/client';
import { out, parse, UsageError } from '../cli.js';
import { CLAIM_NAME, parseDuration } from '@shortleaf/authority';

const USAGE =
  'usage: shortleaf token SUBJECT --provisioner NAME --key FILE --ca URL [--san NAME]... [--claim KEY=VALUE]... | shortleaf token SERIAL --revoke --provisioner NAME --key FILE --ca URL';

/**
 * `--claim KEY=VALUE` flags as claims for a provisioner's certificate template. Keys are claim
 * names a template can refer to as `{KEY}`; the token's own (registered) claims cannot be set.
 */
function parseClaims(flags: readonly string[]): Record<string, string> {
  const claims = new Map<string, string>();
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    const key = eq < 0 ? flag : flag.slice(0, eq);
    if (eq < 0 || !CLAIM_NAME.test(key))
      throw new UsageError(
        `--claim takes KEY=VALUE with KEY made of letters, digits and "_", got ${JSON.stringify(flag)}`,
      );
    if (REGISTERED_CLAIMS.includes(key))
      throw new UsageError(
        `--claim ${key}=… is refused: "${key}" is a registered claim the token sets itself (${REGISTERED_CLAIMS.join(', ')})`,
      );
    if (claims.has(key)) throw new UsageError(`--claim ${key} is given twice`);
    claims.set(key, flag.slice(eq + 1));
  }
  // fromEntries defines own properties, so even a claim named __proto__ stays a claim.
  return Object.fromEntries(claims);
}

/**
 * `shortleaf token SUBJECT`: prints a one-time token signed with a provisioner's private JWK.
 * With `--revoke`, the subject is a serial and the token is for `POST /api/v1/revoke` instead.
 */
export async function tokenCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    {
      provisioner: { type: 'string' },
      key: { type: 'string' },
      ca: { type: 'string' },
      san: { type: 'string', multiple: true },
      claim: { type: 'string', multiple: true },
      lifetime: { type: 'string' },
      revoke: { type: 'boolean' },
    },
    ['provisioner', 'key', 'ca'],
  );
  const subject = positionals[0];
  if (subject === undefined) throw new UsageError(USAGE);
  // A revoke token names one serial and nothing else: names and claims would be ignored, so refuse them.
  if (values.revoke && ((values.san ?? []).length > 0 || (values.claim ?? []).length > 0))
    throw new UsageError('--revoke takes a serial only; --san and --claim are for sign tokens');
  const claims = parseClaims(values.claim ?? []);
  const jwk = JSON.parse(readFileSync(values.key!, 'utf8')) as JWK & { provisioner?: string };
  delete jwk.provisioner;
  const sans = values.san && values.san.length > 0 ? [subject, ...values.san.filter((s) => s !== subject)] : [subject];
  const token = await mintToken({
    provisioner: values.provisioner!,
    privateJwk: jwk,
    caUrl: values.ca!,
    subject,
    sans,
    lifetimeSeconds: values.lifetime ? parseDuration(values.lifetime) / 1000 : 300,
    ...(values.revoke ? { audience: revokeAudience(values.ca!) } : {}),
    ...(Object.keys(claims).length > 0 ? { claims } : {}),
  });
  out(token);
}
