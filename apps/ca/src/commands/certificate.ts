import { readFileSync } from 'node:fs';
import { decodeJwt } from 'jose';
import { createClient } from '@shortleaf/client';
import { createCsr, csrToPem, generateKeyPair, importPrivateKeyPem, parseName, type KeyTypeName } from '@shortleaf/pki';
import { out, parse, UsageError } from '../cli.js';
import { writeFileAtomic, writeSecretFile } from '../files.js';
import { LOGIN_FLAGS, loginForProvisioner } from './login.js';

const KTY: Record<string, KeyTypeName> = { EC: 'EC-P256', RSA: 'RSA', OKP: 'Ed25519' };

/**
 * Whether a token was minted by someone else's issuer (an ID token from an OpenID provider, a CI
 * system's token): its `iss` is a URL, where a one-time token's is a provisioner's name. Such a
 * token names nothing itself, the provisioner's template does, so the CSR must not ask for
 * SUBJECT. Read without verifying: it only shapes the request, the CA verifies the token.
 */
function mintedByIdp(token: string): boolean {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' && /^https?:\/\//.test(iss);
  } catch {
    return false;
  }
}

/**
 * `shortleaf certificate SUBJECT`: makes a key and CSR locally (the key never leaves this
 * machine), sends the CSR with a token, writes the key (0600) and the leaf followed by its chain.
 * With `--provisioner NAME` (an oidc provisioner) instead of `--token`, it signs the engineer in
 * at the identity provider first and sends the ID token, as `step ca certificate` does. With an
 * ID token, signed in or given (a CI job's), the names come from the provisioner's template, so
 * the CSR asks for none but the `--san` given (SUBJECT is its common name only).
 */
export async function certificateCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    {
      ca: { type: 'string' },
      root: { type: 'string' },
      token: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      kty: { type: 'string' },
      'not-after': { type: 'string' },
      san: { type: 'string', multiple: true },
      ...LOGIN_FLAGS,
    },
    ['ca', 'root', 'cert', 'key'],
  );
  const subject = positionals[0];
  if (subject === undefined || (values.token === undefined) === (values.provisioner === undefined))
    throw new UsageError(
      'usage: shortleaf certificate SUBJECT --ca URL --root FILE (--token T | --provisioner OIDC_NAME) --cert OUT --key OUT',
    );
  const keyType = KTY[values.kty ?? 'EC'];
  if (keyType === undefined) throw new UsageError('--kty is EC, RSA or OKP');
  // Sign in before making the key: a sign-in abandoned at the provider leaves nothing behind.
  const token = values.provisioner !== undefined ? (await loginForProvisioner(values)).idToken : values.token!;
  const { privateKey } = generateKeyPair(keyType);
  const names = [...(mintedByIdp(token) ? [] : [subject]), ...(values.san ?? [])].map((n) => parseName(n));
  const csr = csrToPem(createCsr(privateKey, { commonName: subject }, names));
  const client = createClient({ caUrl: values.ca!, rootPem: readFileSync(values.root!, 'utf8') });
  const issued = await client.sign({
    csr,
    token,
    ...(values['not-after'] ? { notAfter: values['not-after'] } : {}),
  });
  writeSecretFile(values.key!, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
  writeFileAtomic(values.cert!, issued.certificate + issued.chain);
  out(
    `certificate ${issued.serial} for ${subject} written to ${values.cert} (valid until ${issued.notAfter}); key in ${values.key}`,
  );
}

/** `shortleaf renew`: renews a certificate over mutual TLS with itself, optionally with a new key. */
export async function renewCommand(args: string[]): Promise<void> {
  const { values } = parse(
    args,
    {
      ca: { type: 'string' },
      root: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      rekey: { type: 'boolean' },
    },
    ['ca', 'root', 'cert', 'key'],
  );
  const certPem = readFileSync(values.cert!, 'utf8');
  const keyPem = readFileSync(values.key!, 'utf8');
  const client = createClient({
    caUrl: values.ca!,
    rootPem: readFileSync(values.root!, 'utf8'),
    cert: certPem,
    key: keyPem,
  });
  let newKey = importPrivateKeyPem(keyPem);
  let csr: string | undefined;
  if (values.rekey) {
    newKey = generateKeyPair('EC-P256').privateKey;
    csr = csrToPem(createCsr(newKey, { commonName: null }, []));
  }
  const issued = await client.renew(csr === undefined ? {} : { csr });
  if (values.rekey) writeSecretFile(values.key!, newKey.export({ format: 'pem', type: 'pkcs8' }) as string);
  writeFileAtomic(values.cert!, issued.certificate + issued.chain);
  out(`renewed: certificate ${issued.serial} valid until ${issued.notAfter}`);
}
