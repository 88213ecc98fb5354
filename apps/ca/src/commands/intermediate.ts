import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createIntermediateKey, createRootOcspSignerKey, importIntermediate, importRootOcspSigner } from '@shortleaf/authority';
import { csrToPem, readCertificate, type KeyTypeName } from '@shortleaf/pki';
import { out, parse, UsageError } from '../cli.js';
import { dataSealer, openStore } from '../data.js';
import { writeFileAtomic } from '../files.js';

const clock = { now: () => new Date() };

/** `shortleaf intermediate csr|import`: the server side of the ceremony; the key never leaves the database. */
export async function intermediateCommand(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  if (verb === 'csr') {
    const { values } = parse(rest, { data: { type: 'string' }, name: { type: 'string' }, cn: { type: 'string' }, kty: { type: 'string' }, out: { type: 'string' }, 'ocsp-out': { type: 'string' }, 'password-file': { type: 'string' } }, ['data']);
    const { sealer } = await dataSealer(values.data!, values['password-file']);
    const { store } = await openStore(values.data!);
    try {
      const name = values.name ?? 'primary';
      const csr = await createIntermediateKey(store, sealer, clock, { id: randomUUID(), name, commonName: values.cn ?? 'Shortleaf Intermediate CA', keyType: (values.kty ?? 'EC-P256') as KeyTypeName });
      if (values.out !== undefined) writeFileAtomic(values.out, csrToPem(csr));
      else out(csrToPem(csr));
      if (values['ocsp-out'] !== undefined) {
        // The responder the root delegates for this intermediate's own status; its key stays here, sealed.
        const ocspCsr = await createRootOcspSignerKey(store, sealer, clock, { id: randomUUID(), issuerName: name });
        writeFileAtomic(values['ocsp-out'], csrToPem(ocspCsr));
      }
    } finally {
      await store.close();
    }
    return;
  }
  if (verb === 'import') {
    const { values } = parse(rest, { data: { type: 'string' }, cert: { type: 'string' }, root: { type: 'string' }, name: { type: 'string' }, 'ocsp-cert': { type: 'string' } }, ['data', 'cert', 'root']);
    const { store } = await openStore(values.data!);
    try {
      const name = values.name ?? 'primary';
      const rootPem = readFileSync(values.root!, 'utf8');
      const result = await importIntermediate(store, clock, { name, certificatePem: readFileSync(values.cert!, 'utf8'), rootPem });
      out(`imported intermediate "${result.certificate.subject}" valid until ${result.certificate.notAfter.toISOString()}${result.activated ? ' (now active)' : ''}`);
      if (values['ocsp-cert'] !== undefined) {
        const ocsp = await importRootOcspSigner(store, { issuerName: name, certificatePem: readFileSync(values['ocsp-cert'], 'utf8'), root: readCertificate(rootPem) });
        out(`imported the root-delegated OCSP responder certificate, valid until ${ocsp.notAfter.toISOString()}`);
      }
    } finally {
      await store.close();
    }
    return;
  }
  throw new UsageError('usage: shortleaf intermediate csr --data DIR [--out FILE] [--ocsp-out FILE] | shortleaf intermediate import --data DIR --cert FILE --root FILE [--ocsp-cert FILE]');
}
