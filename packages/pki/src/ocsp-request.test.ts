import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { integerBytes, nullValue, octetString, oid, readTlv, sequence, tlv } from './der.js';
import {
  MAX_OCSP_CERT_IDS,
  MAX_OCSP_REQUEST_BYTES,
  issuerHashes,
  minimalOcspRequest,
  parseOcspRequest,
  type OcspHash,
} from './ocsp-request.js';
import { encodePem } from './pem.js';
import { serialToHex } from './serial.js';
import { lintAndSign } from './sign.js';
import { OpenSsl, assertPkiError, leafFor, makeIntermediate, makeRoot, type TestCa } from './test-fixtures.js';

const openssl = new OpenSsl();
after(() => openssl.remove());

let int: TestCa;
let leafSerial: string;
let leaf2Serial: string;

/** Makes a request with `openssl ocsp -reqout` and returns its bytes. */
function opensslRequest(name: string, args: readonly string[]): Uint8Array {
  openssl.run(['ocsp', '-issuer', 'int.pem', ...args, '-reqout', name]);
  return new Uint8Array(readFileSync(join(openssl.dir, name)));
}

before(() => {
  const root = makeRoot();
  int = makeIntermediate(root);
  openssl.write('int.pem', int.pem);
  const leaf = leafFor(int, ['a.example']);
  const leaf2 = leafFor(int, ['b.example']);
  openssl.write('leaf.pem', encodePem('CERTIFICATE', lintAndSign(leaf.draft, int.signer, leaf.ctx)));
  openssl.write('leaf2.pem', encodePem('CERTIFICATE', lintAndSign(leaf2.draft, int.signer, leaf2.ctx)));
  openssl.write('leaf.key', leaf.key.export({ format: 'pem', type: 'pkcs8' }) as string);
  leafSerial = serialToHex(leaf.draft.serial);
  leaf2Serial = serialToHex(leaf2.draft.serial);
});

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('parseOcspRequest on requests from openssl ocsp', () => {
  it('reads the SHA-1 CertID, the serial and the 16-byte nonce OpenSSL sends by default', () => {
    const der = opensslRequest('req.der', ['-cert', 'leaf.pem']);
    const req = parseOcspRequest(der);
    assert.equal(req.certIds.length, 1);
    const [id] = req.certIds;
    assert.equal(id!.hash, 'sha1');
    assert.equal(id!.serial, leafSerial);
    const hashes = issuerHashes(int.cert, 'sha1');
    assert.deepEqual(hex(id!.issuerNameHash), hex(hashes.nameHash));
    assert.deepEqual(hex(id!.issuerKeyHash), hex(hashes.keyHash));
    // The CertID bytes as received, to echo in the response.
    assert.ok(Buffer.from(der).indexOf(Buffer.from(id!.der)) > 0);
    assert.equal(readTlv(id!.der, 0).end, id!.der.length);
    // The extension value as sent: an OCTET STRING (04 10) around the 16-byte nonce, as OpenSSL prints it.
    assert.equal(req.nonce?.length, 18);
    assert.deepEqual([req.nonce![0], req.nonce![1]], [0x04, 0x10]);
    const text = openssl.run(['ocsp', '-reqin', 'req.der', '-req_text']);
    assert.match(text.replace(/[\s:]/g, ''), new RegExp(`OCSPNonce${hex(req.nonce!).toUpperCase()}`));
  });

  it('reads a request without a nonce as nonce null', () => {
    assert.equal(parseOcspRequest(opensslRequest('req-nononce.der', ['-no_nonce', '-cert', 'leaf.pem'])).nonce, null);
  });

  for (const hash of ['sha256', 'sha384', 'sha512'] as OcspHash[]) {
    it(`reads ${hash} CertIDs (openssl ocsp -${hash}) whose hashes match issuerHashes`, () => {
      const req = parseOcspRequest(opensslRequest(`req-${hash}.der`, [`-${hash}`, '-cert', 'leaf.pem']));
      const [id] = req.certIds;
      const hashes = issuerHashes(int.cert, hash);
      assert.equal(id!.hash, hash);
      assert.equal(id!.issuerNameHash.length, { sha256: 32, sha384: 48, sha512: 64 }[hash as 'sha256']);
      assert.deepEqual([hex(id!.issuerNameHash), hex(id!.issuerKeyHash)], [hex(hashes.nameHash), hex(hashes.keyHash)]);
      assert.equal(id!.serial, leafSerial);
    });
  }

  it('takes several CertIDs (RFC 6960 §4.1.1), up to MAX_OCSP_CERT_IDS by default, naming the limit', () => {
    const der = opensslRequest('req-two.der', ['-cert', 'leaf.pem', '-cert', 'leaf2.pem']);
    assert.deepEqual(
      parseOcspRequest(der).certIds.map((c) => c.serial),
      [leafSerial, leaf2Serial],
    );
    assertPkiError(
      () => parseOcspRequest(der, { maxCertIds: 1 }),
      'badOcspRequest',
      'more than 1 CertID in one request (the limit is 1)',
    );
    const serials = Array.from({ length: MAX_OCSP_CERT_IDS + 1 }, (_, i) => ['-serial', String(1000 + i)]).flat();
    const tooMany = opensslRequest('req-many.der', ['-no_nonce', ...serials]);
    assertPkiError(
      () => parseOcspRequest(tooMany),
      'badOcspRequest',
      `more than ${MAX_OCSP_CERT_IDS} CertIDs in one request`,
    );
    assert.equal(
      parseOcspRequest(opensslRequest('req-ten.der', ['-no_nonce', ...serials.slice(2)])).certIds.length,
      MAX_OCSP_CERT_IDS,
    );
  });

  it('minimalOcspRequest rebuilds, byte for byte, what openssl ocsp -no_nonce sends for one CertID', () => {
    for (const digest of [[], ['-sha256']]) {
      const der = opensslRequest('req-min.der', [...digest, '-no_nonce', '-cert', 'leaf.pem']);
      assert.equal(hex(minimalOcspRequest(parseOcspRequest(der).certIds[0]!)), hex(der));
    }
  });

  it('accepts a signed request and ignores its signature', () => {
    const der = opensslRequest('req-signed.der', ['-signer', 'leaf.pem', '-signkey', 'leaf.key', '-cert', 'leaf.pem']);
    const tbsRequest = readTlv(der, readTlv(der, 0).contentStart);
    assert.equal(readTlv(der, tbsRequest.end).tag, 0xa0, 'optionalSignature is there');
    const req = parseOcspRequest(der);
    assert.equal(req.certIds[0]!.serial, leafSerial);
    assert.equal(req.nonce?.length, 18);
  });
});

// Hand-made requests, to reach every malformation OpenSSL would never send.
const SHA1 = '1.3.14.3.2.26';
interface CertIdParts {
  hashOid?: string;
  params?: Uint8Array[];
  nameHash?: Uint8Array;
  keyHash?: Uint8Array;
  serial?: Uint8Array;
}
const certId = (p: CertIdParts = {}): Uint8Array =>
  sequence(
    sequence(oid(p.hashOid ?? SHA1), ...(p.params ?? [nullValue()])),
    octetString(p.nameHash ?? new Uint8Array(20).fill(1)),
    octetString(p.keyHash ?? new Uint8Array(20).fill(2)),
    integerBytes(p.serial ?? Uint8Array.of(0x12, 0x34)),
  );
const nonceExtension = (value: Uint8Array): Uint8Array => sequence(oid('1.3.6.1.5.5.7.48.1.2'), octetString(value));
interface RequestParts {
  certIds?: Uint8Array[];
  version?: Uint8Array[];
  extensions?: Uint8Array[];
}
const request = (p: RequestParts = {}): Uint8Array =>
  sequence(
    sequence(
      ...(p.version ?? []),
      sequence(...(p.certIds ?? [certId()]).map((c) => sequence(c))),
      ...(p.extensions === undefined ? [] : [tlv(0xa2, sequence(...p.extensions))]),
    ),
  );

describe('parseOcspRequest on malformed requests', () => {
  it('parses the well-formed hand-made request it is built on', () => {
    const req = parseOcspRequest(request({ version: [tlv(0xa0, integerBytes(Uint8Array.of(0)))] }));
    assert.deepEqual(
      { ...req.certIds[0], der: undefined },
      {
        hash: 'sha1',
        issuerNameHash: new Uint8Array(20).fill(1),
        issuerKeyHash: new Uint8Array(20).fill(2),
        serial: '1234',
        der: undefined,
      },
    );
    assert.equal(req.nonce, null);
    // Absent parameters are as good as NULL.
    assert.equal(parseOcspRequest(request({ certIds: [certId({ params: [] })] })).certIds[0]!.hash, 'sha1');
  });

  const valid = request({ extensions: [nonceExtension(octetString(new Uint8Array(16).fill(7)))] });
  const CASES: Array<[string, Uint8Array, string | RegExp]> = [
    ['garbage', Uint8Array.from(Buffer.from('GET / HTTP/1.1\r\n\r\n')), 'malformed OCSP request'],
    ['an empty body', new Uint8Array(0), /truncated/],
    ['a truncated request', valid.subarray(0, valid.length - 3), /truncated/],
    ['trailing bytes', Uint8Array.from([...valid, 0x00]), 'trailing bytes after the request'],
    [
      'a request over the size limit',
      new Uint8Array(MAX_OCSP_REQUEST_BYTES + 1),
      `larger than ${MAX_OCSP_REQUEST_BYTES} bytes`,
    ],
    [
      '1,000 CertIDs (over the size limit too)',
      request({ certIds: Array.from({ length: 1000 }, () => certId()) }),
      'larger than 8192 bytes',
    ],
    ['an empty requestList', request({ certIds: [] }), 'requestList is empty'],
    [
      'an unknown hash algorithm (MD5)',
      request({ certIds: [certId({ hashOid: '1.2.840.113549.2.5' })] }),
      'hash algorithm 1.2.840.113549.2.5 is not supported',
    ],
    [
      'hash parameters other than NULL',
      request({ certIds: [certId({ params: [integerBytes(Uint8Array.of(1))] })] }),
      'hash AlgorithmIdentifier is malformed',
    ],
    [
      'SHA-1 with 32-byte hashes',
      request({ certIds: [certId({ nameHash: new Uint8Array(32), keyHash: new Uint8Array(32) })] }),
      'must be 20 octets for sha1',
    ],
    [
      'SHA-256 with 20-byte hashes',
      request({ certIds: [certId({ hashOid: '2.16.840.1.101.3.4.2.1' })] }),
      'must be 32 octets for sha256',
    ],
    [
      'a negative serial',
      request({ certIds: [certId({ serial: Uint8Array.of(0x80, 1) })] }),
      'serialNumber is negative',
    ],
    ['an empty serial', request({ certIds: [certId({ serial: new Uint8Array(0) })] }), 'serialNumber is empty'],
    [
      'a serial of 21 octets',
      request({ certIds: [certId({ serial: new Uint8Array(21).fill(0x11) })] }),
      'longer than 20 octets',
    ],
    [
      'a serial with a redundant zero',
      request({ certIds: [certId({ serial: Uint8Array.of(0, 1) })] }),
      'not minimally encoded',
    ],
    ['version v2', request({ version: [tlv(0xa0, integerBytes(Uint8Array.of(1)))] }), 'only version v1'],
    [
      'a 33-byte nonce',
      request({ extensions: [nonceExtension(octetString(new Uint8Array(33)))] }),
      'the nonce is 33 octets (RFC 9654 §2.1 allows 1 to 32)',
    ],
    [
      'an empty nonce',
      request({ extensions: [nonceExtension(octetString(new Uint8Array(0)))] }),
      'the nonce is 0 octets',
    ],
    [
      'a 33-byte raw (legacy) nonce',
      request({ extensions: [nonceExtension(new Uint8Array(33).fill(0xaa))] }),
      'the nonce is 33 octets',
    ],
    [
      'two nonces',
      request({
        extensions: [nonceExtension(octetString(Uint8Array.of(1))), nonceExtension(octetString(Uint8Array.of(2)))],
      }),
      'the nonce extension appears twice',
    ],
  ];
  for (const [what, der, fragment] of CASES) {
    it(`refuses ${what} with badOcspRequest`, () =>
      assertPkiError(() => parseOcspRequest(der), 'badOcspRequest', fragment));
  }

  it('counts CertIDs against maxCertIds before reading them all', () => {
    const fifty = request({ certIds: Array.from({ length: 50 }, () => certId()) });
    assert.ok(fifty.length <= MAX_OCSP_REQUEST_BYTES);
    assertPkiError(
      () => parseOcspRequest(fifty, { maxCertIds: 49 }),
      'badOcspRequest',
      'more than 49 CertIDs in one request (the limit is 49)',
    );
    assert.equal(parseOcspRequest(fifty, { maxCertIds: 50 }).certIds.length, 50);
  });

  it('takes nonces of 1 and 32 octets, wrapped or raw, and keeps extnValue exactly as sent', () => {
    const nonceOf = (value: Uint8Array) => parseOcspRequest(request({ extensions: [nonceExtension(value)] })).nonce;
    assert.deepEqual(nonceOf(octetString(Uint8Array.of(9))), octetString(Uint8Array.of(9)));
    assert.deepEqual(nonceOf(octetString(new Uint8Array(32).fill(5))), octetString(new Uint8Array(32).fill(5)));
    // Legacy clients put the nonce itself in extnValue; it is kept bare, to be echoed bare (RFC 9654).
    assert.deepEqual(nonceOf(new Uint8Array(20).fill(0xaa)), new Uint8Array(20).fill(0xaa));
  });

  it('ignores other request extensions', () => {
    const other = sequence(oid('1.3.6.1.5.5.7.48.1.4'), octetString(sequence(oid('1.3.6.1.5.5.7.48.1.1'))));
    assert.equal(parseOcspRequest(request({ extensions: [other] })).nonce, null);
  });
});

describe('issuerHashes', () => {
  it('hashes the subject Name DER and the key bits without the unused-bits octet', async () => {
    const { createHash } = await import('node:crypto');
    const spki = int.cert.publicKey.spki;
    // EC P-256 SPKI: 26 bytes of header, then BIT STRING 03 42 00 and the 65-byte point.
    const bits = spki.subarray(spki.length - 65);
    assert.equal(spki[spki.length - 66], 0x00);
    const { nameHash, keyHash } = issuerHashes(int.cert, 'sha256');
    assert.equal(hex(nameHash), createHash('sha256').update(int.cert.subjectDer).digest('hex'));
    assert.equal(hex(keyHash), createHash('sha256').update(bits).digest('hex'));
  });
});
