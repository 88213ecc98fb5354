import { readFileSync } from 'node:fs';
import { encodePem, readCertificate, type KeyTypeName } from '@shortleaf/pki';
import {
  checkOcspSignerValidity,
  createRoot,
  intermediateUrls,
  openRoot,
  ROOT_OCSP_SIGNER_VALIDITY,
  signIntermediate,
  signRootCrl,
  signRootOcspSigner,
} from '../ceremony.js';
import { out, parse, UsageError } from '../cli.js';
import { writeFileAtomic } from '../files.js';
import { rootLayout } from '../layout.js';
import { rootPassphrase } from '../passphrase.js';

/** `shortleaf root init|sign-intermediate`: the offline ceremony, run on the machine that keeps the root. */
export async function rootCommand(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  if (verb === 'init') {
    const { values } = parse(
      rest,
      { out: { type: 'string' }, cn: { type: 'string' }, kty: { type: 'string' }, validity: { type: 'string' } },
      ['out'],
    );
    const passphrase = await rootPassphrase({ confirm: true });
    const root = createRoot({
      dir: values.out!,
      passphrase,
      commonName: values.cn ?? 'Shortleaf Root CA',
      keyType: (values.kty ?? 'EC-P384') as KeyTypeName,
      ...(values.validity ? { validity: values.validity } : {}),
    });
    const files = rootLayout(values.out!);
    out(
      `root certificate: ${files.certificate}\nroot key (encrypted PKCS#8, mode 0600): ${files.key}\nvalid until ${root.notAfter.toISOString()}`,
    );
    out('Keep this directory offline. Copy only root.crt to the CA server.');
    return;
  }
  if (verb === 'sign-intermediate') {
    const { values } = parse(
      rest,
      {
        root: { type: 'string' },
        csr: { type: 'string' },
        out: { type: 'string' },
        'permit-dns': { type: 'string', multiple: true },
        'permit-uri': { type: 'string', multiple: true },
        validity: { type: 'string' },
        'ocsp-csr': { type: 'string' },
        'ocsp-out': { type: 'string' },
        'status-url': { type: 'string' },
        'ocsp-validity': { type: 'string' },
      },
      ['root', 'csr', 'out'],
    );
    if ((values['ocsp-csr'] === undefined) !== (values['ocsp-out'] === undefined))
      throw new UsageError('--ocsp-csr and --ocsp-out go together');
    if (values['ocsp-validity'] !== undefined && values['ocsp-csr'] === undefined)
      throw new UsageError('--ocsp-validity goes with --ocsp-csr');
    const ocspValidity = checkOcspSignerValidity(
      values['ocsp-validity'] ?? ROOT_OCSP_SIGNER_VALIDITY,
      '--ocsp-validity',
    );
    const root = openRoot(values.root!, await rootPassphrase({ passwordFile: rootLayout(values.root!).password }));
    // The status listener's URL, as the server's `statusUrl`: the ceremony is offline, so it is told.
    const urls =
      values['status-url'] === undefined
        ? undefined
        : intermediateUrls(values['status-url'], root.certificate, values['ocsp-csr'] !== undefined);
    const der = signIntermediate({
      root,
      csrPem: readFileSync(values.csr!, 'utf8'),
      permitDns: values['permit-dns'] ?? [],
      permitUri: values['permit-uri'] ?? [],
      ...(urls === undefined ? {} : { urls }),
      ...(values.validity ? { validity: values.validity } : {}),
    });
    writeFileAtomic(values.out!, encodePem('CERTIFICATE', der));
    out(`intermediate certificate written to ${values.out}`);
    if (urls === undefined) {
      out(
        'warning: without --status-url the intermediate names no OCSP responder, issuer or CRL for itself; verifiers that check the whole chain (NSS with OCSP on every certificate) cannot learn its status',
      );
    } else {
      out(
        `it names the root's certificate ${urls.caIssuers}, the root's CRL ${urls.crl}${urls.ocsp === undefined ? '' : ` and OCSP ${urls.ocsp}`}`,
      );
    }
    if (values['ocsp-csr'] !== undefined) {
      const ocsp = signRootOcspSigner({
        root,
        csrPem: readFileSync(values['ocsp-csr'], 'utf8'),
        validity: ocspValidity,
      });
      writeFileAtomic(values['ocsp-out']!, encodePem('CERTIFICATE', ocsp));
      out(
        `root-delegated OCSP responder certificate written to ${values['ocsp-out']}, valid until ${readCertificate(ocsp).notAfter.toISOString()}: re-sign it before then (\`shortleaf root sign-ocsp\`)`,
      );
    }
    return;
  }
  if (verb === 'sign-ocsp') {
    // The ceremony's recurring chore: a new root-delegated OCSP responder for an intermediate
    // already in service, from `shortleaf intermediate ocsp-csr`.
    const { values } = parse(
      rest,
      { root: { type: 'string' }, csr: { type: 'string' }, out: { type: 'string' }, validity: { type: 'string' } },
      ['root', 'csr', 'out'],
    );
    const validity = checkOcspSignerValidity(values.validity ?? ROOT_OCSP_SIGNER_VALIDITY, '--validity');
    const root = openRoot(values.root!, await rootPassphrase({ passwordFile: rootLayout(values.root!).password }));
    const der = signRootOcspSigner({ root, csrPem: readFileSync(values.csr!, 'utf8'), validity });
    writeFileAtomic(values.out!, encodePem('CERTIFICATE', der));
    out(
      `root-delegated OCSP responder certificate written to ${values.out}, valid until ${readCertificate(der).notAfter.toISOString()}; import it with \`shortleaf intermediate ocsp-import\``,
    );
    return;
  }
  if (verb === 'crl') {
    const { values } = parse(
      rest,
      {
        root: { type: 'string' },
        out: { type: 'string' },
        revoke: { type: 'string' },
        reason: { type: 'string' },
        validity: { type: 'string' },
      },
      ['root', 'out'],
    );
    if (values.reason !== undefined && values.revoke === undefined)
      throw new UsageError('--reason goes with --revoke SERIAL');
    const root = openRoot(values.root!, await rootPassphrase({ passwordFile: rootLayout(values.root!).password }));
    const crl = signRootCrl({
      root,
      dir: values.root!,
      ...(values.revoke ? { revoke: { serial: values.revoke, reason: values.reason ?? 'unspecified' } } : {}),
      ...(values.validity ? { validity: values.validity } : {}),
    });
    writeFileAtomic(values.out!, crl.der);
    out(
      `root CRL number ${crl.number} with ${crl.entries} entries written to ${values.out}; import it with \`shortleaf root-crl import\``,
    );
    return;
  }
  throw new UsageError(
    'usage: shortleaf root init --out DIR | root sign-intermediate --root DIR --csr FILE --out FILE [--status-url http://HOST:PORT] [--permit-dns D]... [--permit-uri U]... [--ocsp-csr F --ocsp-out F [--ocsp-validity 90d]] | root sign-ocsp --root DIR --csr FILE --out FILE [--validity 90d] | root crl --root DIR --out FILE [--revoke SERIAL --reason R]',
  );
}
