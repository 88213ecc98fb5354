import { X509Certificate } from 'node:crypto';
import { run, type RunResult } from './cli.js';

/** Runs openssl and returns the full result, whatever the exit code. */
export function opensslResult(args: readonly string[], input?: string | Uint8Array): Promise<RunResult> {
  return run('openssl', args, input === undefined ? {} : { input });
}

/** Runs openssl and returns its stdout; a non-zero exit fails the test with openssl's stderr. */
export async function openssl(args: readonly string[], input?: string | Uint8Array): Promise<string> {
  const r = await opensslResult(args, input);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** `openssl x509 -text -noout` of a PEM file. */
export const x509TextOfFile = (file: string): Promise<string> => openssl(['x509', '-in', file, '-text', '-noout']);

/** `openssl x509 -text -noout` of PEM text (the first certificate in it). */
export const x509Text = (pem: string): Promise<string> => openssl(['x509', '-text', '-noout'], pem);

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g;

/** The certificate blocks in a PEM text, in order, each ending with a newline. */
export function splitCertificates(text: string): string[] {
  return [...text.matchAll(CERT_BLOCK)].map((m) => (m[0].endsWith('\n') ? m[0] : `${m[0]}\n`));
}

/** DER of the first certificate in PEM text, via node's OpenSSL-backed parser. */
export const certDer = (pem: string): Buffer => new X509Certificate(pem).raw;

/** The value lines under an extension heading in `openssl x509 -text` output, joined. */
export function extension(text: string, heading: string): string | null {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.trim().startsWith(heading));
  if (at < 0) return null;
  const indent = lines[at]!.search(/\S/);
  const body: string[] = [];
  for (const line of lines.slice(at + 1)) {
    if (line.trim() === '' || line.search(/\S/) <= indent) break;
    body.push(line.trim());
  }
  return body.join('\n');
}

/** The heading line of an extension, e.g. "X509v3 Key Usage: critical". */
export const extensionHeading = (text: string, heading: string): string | null =>
  text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith(heading)) ?? null;

/**
 * The certificates a TLS server sends in its handshake, as PEM, leaf first
 * (`openssl s_client -showcerts`).
 */
export async function handshakeCertificates(
  host: string,
  port: number,
  servername = 'localhost',
): Promise<{ certs: string[]; output: string }> {
  const r = await opensslResult(
    ['s_client', '-connect', `${host}:${port}`, '-servername', servername, '-showcerts'],
    '',
  );
  const certs = splitCertificates(r.stdout);
  if (certs.length === 0)
    throw new Error(`openssl s_client got no certificate from ${host}:${port}\n${r.stdout}\n${r.stderr}`);
  return { certs, output: `${r.stdout}\n${r.stderr}` };
}

/** The SPKI (public key PEM) of a certificate file and of a private key file, to compare them. */
export async function publicKeyOfCert(file: string): Promise<string> {
  return openssl(['x509', '-in', file, '-noout', '-pubkey']);
}
export async function publicKeyOfKey(file: string, passphrase?: string): Promise<string> {
  return openssl([
    'pkey',
    '-in',
    file,
    '-pubout',
    ...(passphrase === undefined ? [] : ['-passin', `pass:${passphrase}`]),
  ]);
}
