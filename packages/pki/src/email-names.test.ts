import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { issuerInfo, readCertificate, type CertificateInfo } from './certificate.js';
import { createSigner } from './crypto.js';
import { PkiError } from './errors.js';
import { lintDraft } from './lints/index.js';
import { withinConstraints } from './lints/names.js';
import { parseName, parseNameOfKind, policyRefusal, validateNamePolicy } from './names.js';
import { encodePem } from './pem.js';
import { lintAndSign, signDraft } from './sign.js';
import { OpenSsl, leafFor, makeIntermediate, makeRoot, type TestCa } from './test-fixtures.js';

const openssl = new OpenSsl();
after(() => openssl.remove());

function assertBadName(fn: () => unknown, fragment: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PkiError && err.code === 'badName', `expected badName, got ${String(err)}`);
    assert.ok(err.message.includes(fragment), `message was: ${err.message}`);
    return true;
  });
}

describe('email names', () => {
  it('classifies an address as email, keeping the local part and lower-casing the domain', () => {
    assert.deepEqual(parseName('alice@eng.example'), { kind: 'email', value: 'alice@eng.example' });
    assert.deepEqual(parseName('Alice.Smith+ci@Eng.Example'), { kind: 'email', value: 'Alice.Smith+ci@eng.example' });
    assert.deepEqual(parseNameOfKind('email', 'a@localhost'), { kind: 'email', value: 'a@localhost' });
    // A scheme still makes it a URI, never an email.
    assert.equal(parseName('mailto:alice@eng.example').kind, 'uri');
  });

  it('refuses anything but one plain addr-spec', () => {
    const bad: Array<[string, string]> = [
      ['a@b.example@evil.example', 'exactly one "@"'],
      ['@eng.example', '1 to 64 characters'],
      ['alice@', 'not a DNS name'],
      ['"al ice"@eng.example', 'whitespace'],
      ['"alice"@eng.example', 'no quotes'],
      ["o'brien@eng.example", 'no quotes'],
      ['a..b@eng.example', 'dot-separated'],
      ['.a@eng.example', 'dot-separated'],
      ['a.@eng.example', 'dot-separated'],
      ['a(comment)@eng.example', 'dot-separated'],
      ['alice@eng.example.', 'no trailing dot'],
      ['alice@*.eng.example', 'wildcard'],
      ['alice@[10.0.0.1]', 'address literal'],
      ['alice@10.0.0.1', 'not a DNS name'],
      ['alice@under_score.example', 'not a DNS name'],
      ['alicé@eng.example', 'ASCII'],
      [`${'a'.repeat(65)}@eng.example`, '1 to 64 characters'],
      [
        `${'a'.repeat(10)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(60)}.example`,
        'longer than 254',
      ],
    ];
    for (const [raw, fragment] of bad) assertBadName(() => parseNameOfKind('email', raw), fragment);
    // Read by tag, an email name is never taken for another kind, nor another kind for an email.
    assertBadName(() => parseNameOfKind('email', 'eng.example'), 'exactly one "@"');
    assertBadName(() => parseNameOfKind('dns', 'alice@eng.example'), 'not a valid DNS name');
  });
});

describe('email rules in a name policy', () => {
  it('validates *@DOMAIN and exact addresses, refusing anything else', () => {
    validateNamePolicy({ email: ['*@eng.example', 'ops@example.com'] });
    for (const p of ['*@*.eng.example', '*.eng.example', '*', 'a@b@c.example', '*@.eng.example', 'x@'])
      assert.throws(() => validateNamePolicy({ email: [p] }), /email pattern/, p);
  });

  it('allows an address only if a rule matches it: any mailbox at exactly the domain, or the one address', () => {
    const policy = { email: ['*@eng.example', 'Ops@Example.com'] };
    assert.equal(policyRefusal({ kind: 'email', value: 'alice@eng.example' }, policy), null);
    assert.equal(policyRefusal({ kind: 'email', value: 'Ops@example.com' }, policy), null);
    // The local part is case-sensitive (RFC 5280 §7.5): another mailbox, refused.
    assert.match(policyRefusal({ kind: 'email', value: 'ops@example.com' }, policy)!, /not allowed/);
    assert.match(policyRefusal({ kind: 'email', value: 'alice@sub.eng.example' }, policy)!, /not allowed/);
    assert.match(policyRefusal({ kind: 'email', value: 'alice@evil-eng.example' }, policy)!, /not allowed/);
  });

  it('counts as a rule: a DNS-only policy refuses emails, an email-only policy refuses DNS names', () => {
    assert.match(
      policyRefusal({ kind: 'email', value: 'alice@eng.example' }, { dns: ['.eng.example'] })!,
      /no email addresses/,
    );
    assert.match(policyRefusal({ kind: 'dns', value: 'eng.example' }, { email: ['*@eng.example'] })!, /no DNS names/);
    // With no rule at all every valid name is allowed, but a hand-built malformed one never is.
    assert.equal(policyRefusal({ kind: 'email', value: 'alice@eng.example' }, {}), null);
    assert.match(policyRefusal({ kind: 'email', value: 'a@b@c.example' }, {})!, /exactly one "@"/);
  });
});

describe('rfc822Name constraints (RFC 5280 §4.2.1.10)', () => {
  it('a mailbox, a host, or .domain for the hosts below it', () => {
    const ok = (value: string, email: string[]): boolean => withinConstraints({ kind: 'email', value }, [], [], email);
    assert.ok(ok('alice@eng.example', ['alice@Eng.Example']));
    assert.ok(!ok('Alice@eng.example', ['alice@eng.example']));
    assert.ok(ok('alice@eng.example', ['ENG.example']));
    assert.ok(!ok('alice@sub.eng.example', ['eng.example']));
    assert.ok(ok('alice@sub.eng.example', ['.eng.example']));
    assert.ok(!ok('alice@eng.example', ['.eng.example']));
    assert.ok(!ok('alice@evileng.example', ['.eng.example']));
    // Constraints of other forms say nothing about email, and email ones nothing about DNS.
    assert.ok(withinConstraints({ kind: 'email', value: 'a@x.example' }, ['.internal.example'], ['example.org'], []));
    assert.ok(withinConstraints({ kind: 'dns', value: 'x.example' }, [], [], ['eng.example']));
  });
});

describe('email names in certificates', () => {
  let root: TestCa;
  let intC: TestCa;
  let nc: { cert: CertificateInfo; signer: ReturnType<typeof createSigner> };

  before(() => {
    root = makeRoot();
    intC = makeIntermediate(root, { commonName: 'Constrained', permitDns: ['.internal.example'] });
    openssl.write('root.pem', root.pem);
    openssl.write('intc.pem', intC.pem);
    // A CA signed elsewhere whose constraints name email: Shortleaf must read and respect them.
    openssl.run([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'nc.key',
      '-subj',
      '/CN=Email Constrained',
      '-days',
      '36500',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-addext',
      'nameConstraints=critical,permitted;email:eng.example,permitted;DNS:.internal.example',
      '-out',
      'nc.pem',
    ]);
    const key = createPrivateKey(readFileSync(join(openssl.dir, 'nc.key')));
    nc = { cert: readCertificate(readFileSync(join(openssl.dir, 'nc.pem'), 'utf8')), signer: createSigner(key) };
  });

  it('writes an rfc822Name that OpenSSL prints as email: and reads it back', () => {
    const leaf = leafFor(intC, ['a.internal.example', 'alice@eng.example']);
    const der = lintAndSign(leaf.draft, intC.signer, leaf.ctx);
    openssl.write('leaf-email.pem', encodePem('CERTIFICATE', der));
    const text = openssl.run(['x509', '-in', 'leaf-email.pem', '-noout', '-text']);
    assert.match(text, /Subject Alternative Name: \s*\n\s+DNS:a\.internal\.example, email:alice@eng\.example\n/);
    assert.deepEqual(readCertificate(der).names, [
      { kind: 'dns', value: 'a.internal.example' },
      { kind: 'email', value: 'alice@eng.example' },
    ]);
    // A DNS-only constraint says nothing about email: OpenSSL accepts the chain, as RFC 5280 says.
    const v = openssl.verify('root.pem', 'intc.pem', 'leaf-email.pem', ['-purpose', 'sslclient']);
    assert.ok(v.ok, v.output);
  });

  it('reads rfc822Name constraints from an intermediate and never signs an address outside them', () => {
    assert.deepEqual(nc.cert.permittedEmail, ['eng.example']);
    const info = issuerInfo(nc.cert, nc.signer);
    assert.deepEqual(info.permittedEmail, ['eng.example']);
    const ca: TestCa = { ...intC, cert: nc.cert, info, signer: nc.signer };
    const inside = leafFor(ca, ['a.internal.example', 'alice@eng.example']);
    openssl.write('nc-inside.pem', encodePem('CERTIFICATE', lintAndSign(inside.draft, nc.signer, inside.ctx)));
    const v = openssl.verify('nc.pem', null, 'nc-inside.pem', ['-purpose', 'sslclient']);
    assert.ok(v.ok, v.output);
    const outside = leafFor(ca, ['a.internal.example', 'alice@other.example']);
    assert.ok(
      lintDraft(outside.draft, outside.ctx).some((e) => e.includes('email:alice@other.example is outside')),
      'the lint refuses it',
    );
    // Signed without the lints, OpenSSL refuses that certificate: the lint agrees with verifiers.
    openssl.write('nc-outside.pem', encodePem('CERTIFICATE', signDraft(outside.draft, nc.signer)));
    const refused = openssl.verify('nc.pem', null, 'nc-outside.pem', ['-purpose', 'sslclient']);
    assert.ok(!refused.ok);
    assert.match(refused.output, /permitted subtree violation/);
  });
});
