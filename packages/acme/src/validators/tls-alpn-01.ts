import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { parseIp } from '@shortleaf/pki';
import { AcmeError } from '../errors.js';
import { DNS_NAME_TAG, IP_ADDRESS_TAG, readChallengeCertificate } from './challenge-certificate.js';
import { dial } from './dial.js';
import { errorCode } from './describe.js';
import type { ChallengeToValidate, ValidationContext } from './types.js';

/** The ALPN protocol of RFC 8737 §6.2. */
export const ACME_TLS_ALPN = 'acme-tls/1';

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE']);

/**
 * RFC 8737 §3: a TLS handshake offering only `acme-tls/1`, with SNI the name (RFC 8738 §6: the
 * reverse-DNS name for an IP), must negotiate that protocol and present a certificate whose only
 * subjectAltName is the identifier and whose critical acmeIdentifier extension holds
 * SHA-256(key authorization). The certificate is not otherwise verified. Errors name what is
 * wrong, never what the server sent instead (the target may be an internal service).
 */
export async function validateTlsAlpn01(challenge: ChallengeToValidate, ctx: ValidationContext): Promise<void> {
  const { type, value } = challenge.identifier;
  const ip = type === 'ip' ? parseIp(value) : null;
  const servername = ip === null ? value : reverseName(ip);
  const { socket: tcp, address } = await dial(value, ctx.config.tlsPort, ctx, { label: value, identifier: true });
  const where = `${address}:${ctx.config.tlsPort} (SNI ${servername})`;
  const { alpn, der } = await handshake(tcp, servername, where, ctx);
  if (alpn !== ACME_TLS_ALPN)
    throw new AcmeError('tls', `${where} did not negotiate the ALPN protocol ${ACME_TLS_ALPN}`);
  checkCertificate(der, challenge, ip, where);
}

/** The TLS handshake over a connection `dial` checked; the socket is closed on every path. */
async function handshake(
  tcp: Socket,
  servername: string,
  where: string,
  ctx: ValidationContext,
): Promise<{ alpn: string | null; der: Uint8Array | null }> {
  let socket: TLSSocket | undefined;
  const done = new Promise<{ alpn: string | null; der: Uint8Array | null }>((resolve, reject) => {
    socket = connect({ socket: tcp, servername, ALPNProtocols: [ACME_TLS_ALPN], rejectUnauthorized: false }, () => {
      const raw: unknown = socket?.getPeerCertificate().raw;
      resolve({
        alpn: typeof socket?.alpnProtocol === 'string' ? socket.alpnProtocol : null,
        der: raw instanceof Uint8Array ? raw : null,
      });
    });
    socket.on('error', (error) => reject(handshakeError(error, where)));
    socket.on('close', () =>
      reject(new AcmeError('connection', `${where} closed the connection during the TLS handshake`)),
    );
  });
  try {
    return await ctx.deadline.race(
      done,
      () =>
        new AcmeError(
          'connection',
          `the TLS handshake with ${where} did not finish within ${ctx.deadline.timeoutMs} ms`,
        ),
    );
  } finally {
    socket?.destroy();
    tcp.destroy();
  }
}

function handshakeError(error: unknown, where: string): AcmeError {
  const code = errorCode(error);
  if (CONNECTION_CODES.has(code))
    return new AcmeError('connection', `connecting to ${where} failed (${code})`, { cause: error });
  if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') {
    return new AcmeError(
      'tls',
      `${where} refused the ALPN protocol ${ACME_TLS_ALPN}; is the challenge responder running?`,
      { cause: error },
    );
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER')
    return new AcmeError('tls', `${where} does not speak TLS (wrong version number)`, { cause: error });
  // OpenSSL's `reason` is the readable part of its error string.
  const reason = (error as { reason?: unknown }).reason;
  return new AcmeError(
    'tls',
    `the TLS handshake with ${where} failed: ${typeof reason === 'string' ? reason : `error ${code}`}`,
    { cause: error },
  );
}

function checkCertificate(
  der: Uint8Array | null,
  challenge: ChallengeToValidate,
  ip: Uint8Array | null,
  where: string,
): void {
  const refuse = (problem: string) => new AcmeError('incorrectResponse', `the certificate from ${where} ${problem}`);
  if (der === null) throw refuse('is missing: no certificate was presented');
  let certificate;
  try {
    certificate = readChallengeCertificate(der);
  } catch (cause) {
    throw new AcmeError('incorrectResponse', `the certificate from ${where} cannot be read as an X.509 certificate`, {
      cause,
    });
  }
  const { value } = challenge.identifier;
  const names = certificate.altNames ?? [];
  if (names.length !== 1) throw refuse(`must have exactly one subjectAltName, ${value}`);
  const [name] = names as [{ tag: number; value: Uint8Array }];
  const matches =
    ip === null
      ? name.tag === DNS_NAME_TAG && Buffer.from(name.value).toString('latin1').toLowerCase() === value
      : name.tag === IP_ADDRESS_TAG && Buffer.from(name.value).equals(ip);
  if (!matches)
    throw refuse(`has a subjectAltName that is not ${ip === null ? 'the dNSName' : 'the iPAddress'} ${value}`);

  // RFC 8737 §3: exactly one acmeIdentifier extension, critical, extnValue = OCTET STRING (SIZE (32)).
  const extensions = certificate.acmeIdentifiers;
  if (extensions.length !== 1) throw refuse('must have exactly one acmeIdentifier extension (1.3.6.1.5.5.7.1.31)');
  const [extension] = extensions as [{ critical: boolean; value: Uint8Array }];
  if (!extension.critical) throw refuse('has an acmeIdentifier extension that is not marked critical');
  const octets = extension.value;
  if (octets.length !== 34 || octets[0] !== 0x04 || octets[1] !== 32)
    throw refuse('has an acmeIdentifier extension that is not a DER OCTET STRING of 32 bytes');
  const expected = createHash('sha256').update(challenge.keyAuthorization).digest();
  const got = Buffer.from(octets.subarray(2));
  if (!got.equals(expected))
    throw refuse(`has an acmeIdentifier that is not SHA-256 of the key authorization, ${expected.toString('hex')}`);
}

/** RFC 8738 §6: the reverse-mapping name of an address, e.g. `1.0.0.127.in-addr.arpa`. */
export function reverseName(ip: Uint8Array): string {
  if (ip.length === 4) return `${Array.from(ip).reverse().join('.')}.in-addr.arpa`;
  const nibbles = Array.from(ip).flatMap((b) => [(b >> 4).toString(16), (b & 0xf).toString(16)]);
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}
