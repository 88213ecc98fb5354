import { readFileSync } from 'node:fs';
import type { JWK } from 'jose';
import { mintToken } from '@shortleaf/client';
import { out, parse, UsageError } from '../cli.js';
import { parseDuration } from '@shortleaf/authority';

/** `shortleaf token SUBJECT`: prints a one-time token signed with a provisioner's private JWK. */
export async function tokenCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { provisioner: { type: 'string' }, key: { type: 'string' }, ca: { type: 'string' }, san: { type: 'string', multiple: true }, lifetime: { type: 'string' } }, ['provisioner', 'key', 'ca']);
  const subject = positionals[0];
  if (subject === undefined) throw new UsageError('usage: shortleaf token SUBJECT --provisioner NAME --key FILE --ca URL [--san NAME]...');
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
  });
  out(token);
}
