import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PkiError } from './errors.js';
import { decodePem, decodePemOne, encodeCertificates, encodePem } from './pem.js';
import { assertPkiError } from './test-fixtures.js';

// 200 bytes so the base64 body spans several 64-character lines.
const der = Uint8Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff);

describe('encodePem / decodePem', () => {
  it('round-trips DER with 64-character lines (RFC 7468 §2)', () => {
    const pem = encodePem('CERTIFICATE', der);
    const lines = pem.trimEnd().split('\n');
    assert.equal(lines[0], '-----BEGIN CERTIFICATE-----');
    assert.equal(lines.at(-1), '-----END CERTIFICATE-----');
    const body = lines.slice(1, -1);
    assert.ok(body.slice(0, -1).every((l) => l.length === 64));
    assert.ok(body.at(-1)!.length <= 64);
    assert.deepEqual(decodePem(pem), [{ label: 'CERTIFICATE', der }]);
  });

  it('reads several blocks in order, ignoring the text between them', () => {
    const a = Uint8Array.of(1, 2, 3);
    const b = Uint8Array.of(4, 5, 6, 7);
    const text = `subject=CN = leaf\n${encodePem('CERTIFICATE', a)}\nissuer comment\n${encodePem('X509 CRL', b)}`;
    assert.deepEqual(decodePem(text), [
      { label: 'CERTIFICATE', der: a },
      { label: 'X509 CRL', der: b },
    ]);
  });

  it('accepts CRLF line endings', () => {
    const pem = encodePem('CERTIFICATE REQUEST', der).replace(/\n/g, '\r\n');
    assert.deepEqual(decodePem(pem)[0]?.der, der);
  });

  it('encodes a bundle leaf first', () => {
    const a = Uint8Array.of(1);
    const b = Uint8Array.of(2);
    const blocks = decodePem(encodeCertificates([a, b]));
    assert.deepEqual(
      blocks.map((x) => x.der),
      [a, b],
    );
    assert.ok(blocks.every((x) => x.label === 'CERTIFICATE'));
  });

  it('refuses text with no PEM block', () => {
    assertPkiError(() => decodePem('this is not a certificate'), 'badPem', 'no PEM block');
    assertPkiError(() => decodePem(''), 'badPem', 'no PEM block');
  });

  it('refuses a block whose BEGIN and END labels differ', () => {
    assertPkiError(
      () => decodePem('-----BEGIN CERTIFICATE-----\nAQID\n-----END PRIVATE KEY-----\n'),
      'badPem',
      'no PEM block',
    );
  });

  it('refuses a body that is not base64', () => {
    // '=' in the middle and a length that is not a multiple of 4 are both malformed base64.
    assertPkiError(
      () => decodePem('-----BEGIN CERTIFICATE-----\nAQ==AQID\n-----END CERTIFICATE-----\n'),
      'badPem',
      'does not hold valid base64',
    );
    assertPkiError(
      () => decodePem('-----BEGIN CERTIFICATE-----\nAQIDB\n-----END CERTIFICATE-----\n'),
      'badPem',
      '"CERTIFICATE"',
    );
    assertPkiError(
      () => decodePem('-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n'),
      'badPem',
      'does not hold valid base64',
    );
    assertPkiError(() => decodePem('-----BEGIN CERTIFICATE-----\nAQ!D\n-----END CERTIFICATE-----\n'), 'badPem', 'PEM');
  });
});

describe('decodePemOne', () => {
  it('returns the one block with a wanted label, skipping others', () => {
    const text = encodePem('PRIVATE KEY', Uint8Array.of(9)) + encodePem('CERTIFICATE REQUEST', der);
    assert.deepEqual(decodePemOne(text, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']), der);
  });

  it('refuses two blocks with a wanted label', () => {
    const text = encodePem('CERTIFICATE', der) + encodePem('CERTIFICATE', der);
    assertPkiError(() => decodePemOne(text, ['CERTIFICATE']), 'badPem', 'exactly one PEM block labelled CERTIFICATE');
  });

  it('refuses PEM without a wanted label', () => {
    assertPkiError(
      () => decodePemOne(encodePem('PRIVATE KEY', der), ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']),
      'badPem',
      'CERTIFICATE REQUEST or NEW CERTIFICATE REQUEST',
    );
  });
});
