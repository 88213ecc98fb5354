import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  readNameConstraintSet,
  subtreeWithin,
  widerConstraints,
  type NameConstraintSet,
  type Subtree,
} from './name-constraints.js';
import { decodePemOne } from './pem.js';

const dns = (value: string): Subtree => ({ kind: 'dns', value });
const uri = (value: string): Subtree => ({ kind: 'uri', value });
const ip = (cidr: string): Subtree => {
  const [addr, bits] = cidr.split('/') as [string, string];
  const bytes = addr.split('.').map(Number);
  const mask = [0, 1, 2, 3].map((i) => (0xff << (8 - Math.max(0, Math.min(8, Number(bits) - 8 * i)))) & 0xff);
  return { kind: 'ip', value: Buffer.from([...bytes, ...mask]).toString('hex') };
};
const set = (permitted: Subtree[], excluded: Subtree[] = []): NameConstraintSet => ({ permitted, excluded });

describe('name constraint subtrees (RFC 5280 §4.2.1.10)', () => {
  it('nests DNS subtrees as verifiers match them', () => {
    assert.ok(subtreeWithin(dns('a.internal.example'), dns('internal.example')));
    assert.ok(subtreeWithin(dns('.a.internal.example'), dns('.internal.example')));
    assert.ok(subtreeWithin(dns('a.internal.example'), dns('.internal.example')));
    assert.ok(!subtreeWithin(dns('internal.example'), dns('.internal.example')), 'the domain itself is not below it');
    assert.ok(!subtreeWithin(dns('evilinternal.example'), dns('internal.example')), 'a suffix is not a subdomain');
    assert.ok(!subtreeWithin(dns('example'), dns('internal.example')));
    assert.ok(subtreeWithin(dns('anything.test'), dns('')), 'an empty constraint admits every name');
  });

  it('nests URI hosts, IP ranges, and refuses to guess across kinds', () => {
    assert.ok(subtreeWithin(uri('payments.example.org'), uri('.example.org')));
    assert.ok(!subtreeWithin(uri('other.example.org'), uri('payments.example.org')));
    assert.ok(subtreeWithin(ip('10.20.0.0/16'), ip('10.0.0.0/8')));
    assert.ok(!subtreeWithin(ip('10.0.0.0/8'), ip('10.20.0.0/16')));
    assert.ok(!subtreeWithin(ip('11.0.0.0/16'), ip('10.0.0.0/8')));
    assert.ok(!subtreeWithin(dns('internal.example'), uri('internal.example')));
  });
});

describe('widerConstraints', () => {
  const current = set([dns('.internal.example'), uri('example.org')], [dns('secret.internal.example')]);

  it('accepts the same constraints, narrower ones, and any when there were none', () => {
    assert.deepEqual(widerConstraints(current, current), []);
    assert.deepEqual(
      widerConstraints(
        set([dns('.payments.internal.example'), uri('example.org')], [dns('secret.internal.example')]),
        current,
      ),
      [],
    );
    // The excluded name is outside every permitted subtree of the new one: still out of reach.
    assert.deepEqual(widerConstraints(set([dns('.payments.internal.example'), uri('example.org')]), current), []);
    assert.deepEqual(widerConstraints(null, null), []);
    assert.deepEqual(widerConstraints(set([dns('.anything.test')]), null), []);
  });

  it('names each way the new intermediate admits more', () => {
    assert.match(
      widerConstraints(null, current).join('\n'),
      /dns names are no longer limited[\s\S]*uri names are no longer limited[\s\S]*no longer excludes dns:secret\.internal\.example/,
    );
    assert.match(
      widerConstraints(set([dns('.example'), uri('example.org')], [dns('secret.internal.example')]), current)[0]!,
      /permits dns:\.example, which is within none of dns:\.internal\.example/,
    );
    assert.match(
      widerConstraints(set([dns('.internal.example'), uri('example.org')]), current)[0]!,
      /no longer excludes dns:secret\.internal\.example/,
    );
    assert.match(
      widerConstraints(set([dns('.internal.example')], [dns('secret.internal.example')]), current)[0]!,
      /uri names are no longer limited/,
    );
    // A new kind of constraint alone does not make up for dropping the DNS one.
    assert.equal(
      widerConstraints(set([ip('10.0.0.0/8'), uri('example.org')], [dns('secret.internal.example')]), current).length,
      1,
    );
  });
});

describe('readNameConstraintSet', () => {
  it('reads permitted and excluded subtrees of every form, as OpenSSL writes them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shortleaf-nc-'));
    try {
      const cert = join(dir, 'ca.pem');
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          join(dir, 'k.pem'),
          '-out',
          cert,
          '-subj',
          '/CN=nc',
          '-days',
          '1',
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'nameConstraints=critical,permitted;DNS:.Internal.Example,permitted;IP:10.0.0.0/255.0.0.0,permitted;URI:example.org,excluded;DNS:secret.internal.example,excluded;email:.mail.example',
        ],
        { stdio: 'pipe' },
      );
      const read = readNameConstraintSet(decodePemOne(readFileSync(cert, 'utf8'), ['CERTIFICATE']));
      assert.deepEqual(read, {
        permitted: [dns('.internal.example'), ip('10.0.0.0/8'), uri('example.org')],
        excluded: [dns('secret.internal.example'), { kind: 'email', value: '.mail.example' }],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
