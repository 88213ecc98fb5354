// Leaves shaped by a provisioner's template: subject attributes and extended key usages from the
// leaf table, checked by the lints and read back by OpenSSL; never a CA, never OCSPSigning.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseCertificate } from './certificate.js';
import { generateKeyPair, publicKeyOf } from './crypto.js';
import { OID } from './draft.js';
import { encodeName } from './encode.js';
import { lintDraft } from './lints/index.js';
import { parseName } from './names.js';
import { encodePem } from './pem.js';
import { EXT_KEY_USAGE_NAMES, extKeyUsageOid, leafDraft, type ExtKeyUsageName, type LeafInput } from './profiles.js';
import { newSerial } from './serial.js';
import { lintAndSign } from './sign.js';
import {
  DAY,
  MINUTE,
  OpenSsl,
  URLS,
  assertPkiError,
  at,
  makeIntermediate,
  makeRoot,
  random,
  type TestCa,
} from './test-fixtures.js';

const openssl = new OpenSsl();
after(() => openssl.remove());

let root: TestCa;
let int: TestCa;
before(() => {
  root = makeRoot();
  int = makeIntermediate(root, { permitUri: ['example.org'] });
  openssl.write('root.pem', root.pem);
  openssl.write('int.pem', int.pem);
});

const NAMES = ['spiffe://example.org/ns/prod/sa/api', 'api.prod.example'].map(parseName);

function input(extra: Partial<LeafInput> = {}): LeafInput {
  return {
    serial: newSerial(random).bytes,
    commonName: null,
    names: NAMES,
    publicKey: publicKeyOf(generateKeyPair('EC-P256').privateKey),
    notBefore: at(-MINUTE),
    notAfter: at(DAY),
    issuer: int.info,
    urls: URLS,
    ...extra,
  };
}

/** Lints and signs as the authority does, writes it for OpenSSL, and returns `x509 -text` and the DER. */
function issue(file: string, extra: Partial<LeafInput>): { t: string; der: Uint8Array } {
  const draft = leafDraft(input(extra));
  const der = lintAndSign(draft, int.signer, { issuer: int.info, authorizedNames: NAMES, maxLifetimeMs: DAY });
  openssl.write(file, encodePem('CERTIFICATE', der));
  return { t: openssl.run(['x509', '-in', file, '-noout', '-text']), der };
}

describe('leafDraft with a template', () => {
  it('writes subject attributes in C, ST, L, O, OU, CN order, and keeps CA:FALSE and the key usage', () => {
    const { t, der } = issue('subject.pem', {
      commonName: 'api.prod.example',
      subject: {
        organization: 'Example Corp',
        organizationalUnit: 'payments',
        country: 'US',
        locality: 'Zürich',
        province: 'Zürich',
      },
    });
    // OpenSSL escapes the UTF-8 bytes of ü in its one-line form.
    assert.match(
      t,
      /Subject: C = US, ST = Z\\C3\\BCrich, L = Z\\C3\\BCrich, O = Example Corp, OU = payments, CN = api\.prod\.example\n/,
    );
    assert.match(t, /Basic Constraints: critical\s+CA:FALSE\n/);
    assert.match(t, /Key Usage: critical\s+Digital Signature\n/);
    assert.match(t, /Extended Key Usage: \s*\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
    assert.match(t, /URI:spiffe:\/\/example\.org\/ns\/prod\/sa\/api/);
    assert.ok(openssl.verify('root.pem', 'int.pem', 'subject.pem', ['-purpose', 'sslclient']).ok);
    // countryName must be a PrintableString (RFC 5280 Appendix A); OpenSSL's strict parse shows the type.
    const asn1 = openssl.run(['asn1parse', '-in', 'subject.pem']);
    assert.match(asn1, /:countryName\s*\n.*PRINTABLESTRING\s+:US/);
    assert.match(asn1, /:organizationName\s*\n.*UTF8STRING\s+:Example Corp/);
    // Renewal reads the common name back from among the other attributes.
    assert.equal(parseCertificate(der).commonName, 'api.prod.example');
  });

  it('carries exactly the template EKUs; OpenSSL then refuses the purposes left out', () => {
    const { t } = issue('client-only.pem', { extKeyUsage: ['clientAuth', 'codeSigning'] });
    assert.match(t, /Extended Key Usage: \s*\n\s+TLS Web Client Authentication, Code Signing\n/);
    assert.ok(openssl.verify('root.pem', 'int.pem', 'client-only.pem', ['-purpose', 'sslclient']).ok);
    const server = openssl.verify('root.pem', 'int.pem', 'client-only.pem', ['-purpose', 'sslserver']);
    assert.equal(server.ok, false, server.output);
    assert.match(server.output, /unsuitable certificate purpose/);
  });

  it('without a template keeps the default subject (CN only) and serverAuth + clientAuth', () => {
    const draft = leafDraft(input({ commonName: 'api.prod.example' }));
    assert.deepEqual(draft.extKeyUsage, [OID.serverAuth, OID.clientAuth]);
    assert.deepEqual(draft.subjectDer, encodeName({ commonName: 'api.prod.example' }));
  });

  it('an empty EKU list fails the lints rather than signing a certificate good for any purpose', () => {
    const draft = leafDraft(input({ extKeyUsage: [] }));
    assert.deepEqual(lintDraft(draft, { issuer: int.info, authorizedNames: NAMES, maxLifetimeMs: DAY }), [
      'ext_key_usage_within_profile: a leaf needs at least one ExtendedKeyUsage',
    ]);
  });
});

describe('extKeyUsageOid', () => {
  it('has a row for each name a template may use', () => {
    assert.deepEqual(
      [...EXT_KEY_USAGE_NAMES],
      ['serverAuth', 'clientAuth', 'codeSigning', 'emailProtection', 'timeStamping'],
    );
    const oids = EXT_KEY_USAGE_NAMES.map((n) => extKeyUsageOid(n));
    assert.deepEqual(oids, [
      '1.3.6.1.5.5.7.3.1',
      '1.3.6.1.5.5.7.3.2',
      '1.3.6.1.5.5.7.3.3',
      '1.3.6.1.5.5.7.3.4',
      '1.3.6.1.5.5.7.3.8',
    ]);
  });

  it('refuses OCSPSigning and anyExtendedKeyUsage with the reason, and unknown names listing the known ones', () => {
    assertPkiError(() => extKeyUsageOid('OCSPSigning'), 'badExtKeyUsage', /OCSPSigning is refused: .*RFC 6960/);
    assertPkiError(
      () => extKeyUsageOid('anyExtendedKeyUsage'),
      'badExtKeyUsage',
      /anyExtendedKeyUsage is refused: .*any purpose/,
    );
    assertPkiError(
      () => extKeyUsageOid('ipsecIKE'),
      'badExtKeyUsage',
      'unknown extended key usage "ipsecIKE" (known: serverAuth, clientAuth, codeSigning, emailProtection, timeStamping)',
    );
    assertPkiError(() => extKeyUsageOid('toString'), 'badExtKeyUsage', 'unknown extended key usage "toString"');
    // leafDraft looks every name up, so a refused one never reaches a draft.
    assertPkiError(
      () => leafDraft(input({ extKeyUsage: ['OCSPSigning' as ExtKeyUsageName] })),
      'badExtKeyUsage',
      'OCSPSigning is refused',
    );
  });
});

describe('encodeName', () => {
  it('refuses a country that is not two capital letters, and attributes past their RFC 5280 bounds', () => {
    assertPkiError(() => encodeName({ country: 'USA' }), 'badSubject', 'two-letter ISO 3166 code');
    assertPkiError(() => encodeName({ country: 'us' }), 'badSubject', 'two-letter');
    assertPkiError(
      () => encodeName({ organization: 'x'.repeat(65) }),
      'badSubject',
      'subject organization must be 1 to 64 characters',
    );
    assertPkiError(() => encodeName({ organizationalUnit: 'a\nb' }), 'badSubject', 'control characters');
    assert.doesNotThrow(() => encodeName({ organization: 'x'.repeat(64), locality: 'é'.repeat(128) }));
  });
});
