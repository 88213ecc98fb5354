import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  activateIntermediate,
  createIntermediateKey,
  createRootOcspSignerKey,
  importIntermediate,
  importRootOcspSigner,
  IN_SERVICE,
  issuerStatuses,
  rootOcspSignerWarnings,
} from '@shortleaf/authority';
import { csrToPem, readCertificate, type KeyTypeName } from '@shortleaf/pki';
import { out, parse, UsageError } from '../cli.js';
import { defaultConfig } from '../config.js';
import { describeLocation, LOCATION_FLAGS, openStore, storeLocation, storeSealer, withStore } from '../data.js';
import { writeFileAtomic } from '../files.js';

const clock = { now: () => new Date() };
/** `intermediate.ocspSignerWarnBefore`'s default, from the config schema: the CLI reads no server config file. */
const ocspSignerWarnBeforeMs = (): number => defaultConfig().intermediate.ocspSignerWarnBefore;

/**
 * `shortleaf intermediate csr|import|activate|list`: the server side of the ceremony and of
 * rotation; the key never leaves the database. A running server picks up `activate` by itself.
 */
export async function intermediateCommand(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  if (verb === 'csr') {
    const { values } = parse(rest, {
      ...LOCATION_FLAGS,
      name: { type: 'string' },
      cn: { type: 'string' },
      kty: { type: 'string' },
      out: { type: 'string' },
      'ocsp-out': { type: 'string' },
      'password-file': { type: 'string' },
    });
    const location = storeLocation(values);
    const store = await openStore(location);
    try {
      const { sealer } = await storeSealer(location, store, values['password-file']);
      const name = values.name ?? 'primary';
      const csr = await createIntermediateKey(store, sealer, clock, {
        id: randomUUID(),
        name, // Distinct names keep verifiers from confusing two intermediates (and their CRLs) during a rotation.
        commonName:
          values.cn ?? (name === 'primary' ? 'Shortleaf Intermediate CA' : `Shortleaf Intermediate CA ${name}`),
        keyType: (values.kty ?? 'EC-P256') as KeyTypeName,
      });
      if (values.out !== undefined) writeFileAtomic(values.out, csrToPem(csr));
      else out(csrToPem(csr));
      if (values['ocsp-out'] !== undefined) {
        // The responder the root delegates for this intermediate's own status; its key stays here, sealed.
        const ocspCsr = await createRootOcspSignerKey(store, sealer, clock, { id: randomUUID(), issuerName: name });
        writeFileAtomic(values['ocsp-out'], csrToPem(ocspCsr));
      }
      // Say what happened and what comes next; with the CSR on stdout, say it on stderr so the PEM stays pipeable.
      const written = [values.out, values['ocsp-out']].filter((f): f is string => f !== undefined);
      const next = `intermediate ${name}: key sealed in ${describeLocation(location)}${written.length > 0 ? `, CSR in ${written.join(' and ')}` : ''}; next, offline: shortleaf root sign-intermediate --csr …, then shortleaf intermediate import --name ${name}`;
      if (values.out !== undefined) out(next);
      else process.stderr.write(`${next}\n`);
    } finally {
      await store.close();
    }
    return;
  }
  if (verb === 'import') {
    const { values } = parse(
      rest,
      {
        ...LOCATION_FLAGS,
        cert: { type: 'string' },
        root: { type: 'string' },
        name: { type: 'string' },
        'ocsp-cert': { type: 'string' },
        'allow-wider-constraints': { type: 'boolean' },
      },
      ['cert', 'root'],
    );
    const store = await openStore(storeLocation(values));
    try {
      const name = values.name ?? 'primary';
      const rootPem = readFileSync(values.root!, 'utf8');
      const result = await importIntermediate(store, clock, {
        name,
        certificatePem: readFileSync(values.cert!, 'utf8'),
        rootPem,
        allowWiderConstraints: values['allow-wider-constraints'] === true,
      });
      if (result.widerThan !== null)
        out(
          `warning: ${name} admits names ${result.widerThan.name} did not (imported as --allow-wider-constraints asked): ${result.widerThan.reasons.join('; ')}`,
        );
      out(
        `imported intermediate "${result.certificate.subject}" valid until ${result.certificate.notAfter.toISOString()}${result.activated ? ' (now active)' : ''}`,
      );
      if (!result.activated) {
        out(
          `${name} is staged: servers publish its certificate (/intermediates.pem) and CRL (/crl/${name}) from now on. Add it to your proxies' trust, then run \`shortleaf intermediate activate ${name}\` (with --data DIR or --database URL).`,
        );
      }
      if (values['ocsp-cert'] !== undefined) {
        const ocsp = await importRootOcspSigner(store, {
          issuerName: name,
          certificatePem: readFileSync(values['ocsp-cert'], 'utf8'),
          root: readCertificate(rootPem),
        });
        out(`imported the root-delegated OCSP responder certificate, valid until ${ocsp.notAfter.toISOString()}`);
      }
    } finally {
      await store.close();
    }
    return;
  }
  if (verb === 'ocsp-csr') {
    // A new key for the responder the root delegates to answer for this intermediate, for the
    // next ceremony; the one in use keeps answering until its replacement is imported.
    const { values } = parse(
      rest,
      {
        ...LOCATION_FLAGS,
        name: { type: 'string' },
        out: { type: 'string' },
        'password-file': { type: 'string' },
      },
      ['out'],
    );
    const location = storeLocation(values);
    const csr = await withStore(location, async (store) => {
      const { sealer } = await storeSealer(location, store, values['password-file']);
      return createRootOcspSignerKey(store, sealer, clock, { id: randomUUID(), issuerName: values.name ?? 'primary' });
    });
    writeFileAtomic(values.out!, csrToPem(csr));
    out(
      `OCSP responder CSR written to ${values.out}: sign it offline with \`shortleaf root sign-ocsp\`, then run \`shortleaf intermediate ocsp-import\``,
    );
    return;
  }
  if (verb === 'ocsp-import') {
    const { values } = parse(
      rest,
      { ...LOCATION_FLAGS, name: { type: 'string' }, cert: { type: 'string' }, root: { type: 'string' } },
      ['cert', 'root'],
    );
    const name = values.name ?? 'primary';
    const ocsp = await withStore(storeLocation(values), (store) =>
      importRootOcspSigner(store, {
        issuerName: name,
        certificatePem: readFileSync(values.cert!, 'utf8'),
        root: readCertificate(readFileSync(values.root!, 'utf8')),
      }),
    );
    out(
      `imported the root-delegated OCSP responder certificate for ${name}, valid until ${ocsp.notAfter.toISOString()}; running servers answer with it within a few seconds`,
    );
    return;
  }
  if (verb === 'activate') {
    const { values, positionals } = parse(rest, { ...LOCATION_FLAGS, name: { type: 'string' } });
    const name = values.name ?? positionals[0];
    if (name === undefined || positionals.length > (values.name === undefined ? 1 : 0))
      throw new UsageError('usage: shortleaf intermediate activate (--data DIR | --database URL) NAME');
    const result = await withStore(storeLocation(values), (store) => activateIntermediate(store, clock, name));
    out(
      `${name} is now the active intermediate (valid until ${result.certificate.notAfter.toISOString()}); running servers switch to it within a few seconds.`,
    );
    if (result.previous !== null)
      out(
        `${result.previous} is retired: it keeps publishing its CRL (/crl/${result.previous}) and answering OCSP until the last certificate it issued expires.`,
      );
    return;
  }
  if (verb === 'list') {
    const { values } = parse(rest, LOCATION_FLAGS);
    const { statuses, warnings } = await withStore(storeLocation(values), async (store) => {
      const statuses = await issuerStatuses(store, clock.now());
      // The root-delegated OCSP responders lapse between ceremonies; say so where operators look.
      const warnings: string[] = [];
      for (const s of statuses.filter((x) => IN_SERVICE.has(x.state))) {
        const signer = await store.revocations.getOcspSigner(s.row.id, { certified: true });
        if (signer !== null && signer.certDer !== null)
          warnings.push(
            ...rootOcspSignerWarnings(
              s.row.name,
              readCertificate(signer.certDer),
              clock.now(),
              ocspSignerWarnBeforeMs(),
            ),
          );
      }
      return { statuses, warnings };
    });
    out('NAME                 STATE    NOT AFTER                 LAST CERTIFICATE EXPIRES  SUBJECT');
    for (const s of statuses) {
      const cols = [
        s.row.name.padEnd(20),
        s.state.padEnd(8),
        (s.certificate?.notAfter.toISOString() ?? '-').padEnd(25),
        (s.lastExpiry?.toISOString() ?? '-').padEnd(25),
        s.certificate?.subject ?? "(awaiting the root's signature)",
      ];
      out(cols.join(' '));
    }
    for (const w of warnings) out(`warning: ${w}`);
    return;
  }
  throw new UsageError(
    'usage (each with --data DIR or --database URL): shortleaf intermediate csr [--name NAME] [--out FILE] [--ocsp-out FILE] | intermediate import [--name NAME] --cert FILE --root FILE [--ocsp-cert FILE] [--allow-wider-constraints] | intermediate activate NAME | intermediate list | intermediate ocsp-csr [--name NAME] --out FILE | intermediate ocsp-import [--name NAME] --cert FILE --root FILE',
  );
}
