import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createIntermediateKey, importIntermediate } from '@shortleaf/authority';
import { csrToPem, type KeyTypeName } from '@shortleaf/pki';
import { out, parse, UsageError } from '../cli.js';
import { dataSealer, openStore } from '../data.js';
import { writeFileAtomic } from '../files.js';

const clock = { now: () => new Date() };

/** `shortleaf intermediate csr|import`: the server side of the ceremony; the key never leaves the database. */
export async function intermediateCommand(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  if (verb === 'csr') {
    const { values } = parse(rest, { data: { type: 'string' }, name: { type: 'string' }, cn: { type: 'string' }, kty: { type: 'string' }, out: { type: 'string' }, 'password-file': { type: 'string' } }, ['data']);
    const { sealer } = await dataSealer(values.data!, values['password-file']);
    const { store } = await openStore(values.data!);
    try {
      const csr = await createIntermediateKey(store, sealer, clock, { id: randomUUID(), name: values.name ?? 'primary', commonName: values.cn ?? 'Shortleaf Intermediate CA', keyType: (values.kty ?? 'EC-P256') as KeyTypeName });
      if (values.out !== undefined) writeFileAtomic(values.out, csrToPem(csr));
      else out(csrToPem(csr));
    } finally {
      await store.close();
    }
    return;
  }
  if (verb === 'import') {
    const { values } = parse(rest, { data: { type: 'string' }, cert: { type: 'string' }, root: { type: 'string' }, name: { type: 'string' } }, ['data', 'cert', 'root']);
    const { store } = await openStore(values.data!);
    try {
      const result = await importIntermediate(store, clock, { name: values.name ?? 'primary', certificatePem: readFileSync(values.cert!, 'utf8'), rootPem: readFileSync(values.root!, 'utf8') });
      out(`imported intermediate "${result.certificate.subject}" valid until ${result.certificate.notAfter.toISOString()}${result.activated ? ' (now active)' : ''}`);
    } finally {
      await store.close();
    }
    return;
  }
  throw new UsageError('usage: shortleaf intermediate csr --data DIR | shortleaf intermediate import --data DIR --cert FILE --root FILE');
}
