import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSigner, generateKeyPair, keyIdentifier } from './crypto.js';
import { octetString, oid, readChildren, readTlv, sequence, tlv } from './der.js';
import { parseOcspRequest, type CertId, type OcspRequest } from './ocsp-request.js';
import {
  buildOcspResponse,
  ocspErrorResponse,
  responderKeyHash,
  type OcspCertStatus,
  type OcspResponder,
} from './ocsp-response.js';
import { encodePem } from './pem.js';
import { lintAndSign } from './sign.js';
import {
  HOUR,
  NOW,
  OpenSsl,
  at,
  leafFor,
  makeIntermediate,
  makeOcspSigner,
  makeRoot,
  opensslHex,
  type TestCa,
} from './test-fixtures.js';

const openssl = new OpenSsl();
after(() => openssl.remove());

let int: TestCa;
let responderCa: TestCa;
let responder: OcspResponder;

/** Makes a request with `openssl ocsp -reqout` and parses it as the responder would. */
function opensslRequest(name: string, args: readonly string[]): OcspRequest {
  openssl.run(['ocsp', '-issuer', 'int.pem', ...args, '-cert', 'leaf.pem', '-reqout', name]);
  return parseOcspRequest(new Uint8Array(readFileSync(join(openssl.dir, name))));
}

function respond(
  name: string,
  certId: CertId,
  status: OcspCertStatus,
  nonce: Uint8Array | null,
  r: OcspResponder = responder,
): Uint8Array {
  const der = buildOcspResponse({
    responder: r,
    producedAt: NOW,
    responses: [{ certId, status, thisUpdate: NOW, nextUpdate: at(HOUR) }],
    nonce,
  });
  openssl.write(name, der);
  return der;
}

/** `openssl ocsp -respin` as a client that sent `req` (so it checks the nonce), printing the response. */
const checkAgainstRequest = (resp: string, req: string) =>
  openssl.ocsp(['-respin', resp, '-reqin', req, '-issuer', 'int.pem', '-CAfile', 'root.pem', '-resp_text']);
/** `openssl ocsp -respin` asking about leaf.pem, printing its one-line status summary. */
const checkLeaf = (resp: string, extra: readonly string[] = []) =>
  openssl.ocsp([
    '-respin',
    resp,
    '-issuer',
    'int.pem',
    '-CAfile',
    'root.pem',
    '-no_nonce',
    ...extra,
    '-cert',
    'leaf.pem',
  ]);

let request: OcspRequest;

before(() => {
  const root = makeRoot();
  int = makeIntermediate(root);
  responderCa = makeOcspSigner(int);
  responder = { signer: responderCa.signer, certificateDer: responderCa.der };
  openssl.write('root.pem', root.pem);
  openssl.write('int.pem', int.pem);
  openssl.write('responder.pem', responderCa.pem);
  const leaf = leafFor(int, ['a.example']);
  openssl.write('leaf.pem', encodePem('CERTIFICATE', lintAndSign(leaf.draft, int.signer, leaf.ctx)));
  request = opensslRequest('req.der', []);
});

describe('the OCSP signer certificate', () => {
  it('chains to the root and carries OCSPSigning, digitalSignature and ocsp-nocheck only', () => {
    const v = openssl.verify('root.pem', 'int.pem', 'responder.pem', ['-purpose', 'ocsphelper']);
    assert.ok(v.ok, v.output);
    const t = openssl.run(['x509', '-in', 'responder.pem', '-noout', '-text']);
    assert.match(t, /Basic Constraints: critical\s+CA:FALSE\n/);
    assert.match(t, /Key Usage: critical\s+Digital Signature\n/);
    assert.match(t, /Extended Key Usage: *\n\s+OCSP Signing\n/);
    assert.match(t, /OCSP No Check: *\n/);
    assert.match(t, new RegExp(`Authority Key Identifier: *\\n\\s+${opensslHex(int.cert.subjectKeyIdentifier!)}`));
    assert.doesNotMatch(t, /Subject Alternative Name|Authority Information Access|CRL Distribution Points/);
    assert.match(openssl.run(['x509', '-in', 'responder.pem', '-noout', '-ext', 'noCheck']), /OCSP No Check/);
  });
});

describe('buildOcspResponse', () => {
  it('answers good, signed by the delegated responder, with the nonce echoed', () => {
    respond('good.der', request.certIds[0]!, { kind: 'good' }, request.nonce);
    const r = checkAgainstRequest('good.der', 'req.der');
    assert.match(r.output, /Response verify OK/);
    assert.doesNotMatch(r.output, /WARNING|Nonce Verify error|Status times invalid/);
    assert.match(r.output, /OCSP Response Status: successful \(0x0\)/);
    assert.match(r.output, /Version: 1 \(0x0\)/);
    // byKey: OpenSSL prints the key hash in hex where a name would otherwise be.
    assert.match(
      r.output,
      new RegExp(
        `Responder Id: ${Buffer.from(keyIdentifier(responderCa.signer.publicKey.spki)).toString('hex').toUpperCase()}\\n`,
      ),
    );
    assert.match(r.output, /Produced At: Jan {2}1 00:00:00 2030 GMT/);
    assert.match(
      r.output,
      /Cert Status: good\n\s+This Update: Jan {2}1 00:00:00 2030 GMT\n\s+Next Update: Jan {2}1 01:00:00 2030 GMT/,
    );
    assert.match(
      r.output.replace(/[\s:]/g, ''),
      new RegExp(`OCSPNonce${Buffer.from(request.nonce!).toString('hex').toUpperCase()}`),
    );
    // The certs field carries the responder certificate.
    assert.match(r.output, /Subject: O ?= ?Shortleaf Test, CN ?= ?Test OCSP Responder/);
    const summary = checkLeaf('good.der');
    assert.match(summary.output, /Response verify OK/);
    assert.match(
      summary.output,
      /leaf\.pem: good\n\s+This Update: Jan {2}1 00:00:00 2030 GMT\n\s+Next Update: Jan {2}1 01:00:00 2030 GMT\n/,
    );
  });

  it('answers revoked with the time and reason', () => {
    respond(
      'revoked.der',
      request.certIds[0]!,
      { kind: 'revoked', revokedAt: at(-HOUR), reason: 'keyCompromise' },
      request.nonce,
    );
    const summary = checkLeaf('revoked.der');
    assert.match(summary.output, /Response verify OK/);
    assert.match(
      summary.output,
      /leaf\.pem: revoked\n\s+This Update: .*\n\s+Next Update: .*\n\s+Reason: keyCompromise\n\s+Revocation Time: Dec 31 23:00:00 2029 GMT\n/,
    );
    assert.doesNotMatch(checkAgainstRequest('revoked.der', 'req.der').output, /WARNING|Nonce Verify error/);
  });

  it('leaves the reason out when it is unspecified', () => {
    respond(
      'revoked-unspecified.der',
      request.certIds[0]!,
      { kind: 'revoked', revokedAt: at(-HOUR), reason: 'unspecified' },
      null,
    );
    const summary = checkLeaf('revoked-unspecified.der');
    assert.match(summary.output, /leaf\.pem: revoked\n/);
    assert.match(summary.output, /Revocation Time: Dec 31 23:00:00 2029 GMT/);
    assert.doesNotMatch(summary.output, /Reason:/);
  });

  it('answers unknown', () => {
    respond('unknown.der', request.certIds[0]!, { kind: 'unknown' }, null);
    const summary = checkLeaf('unknown.der');
    assert.match(summary.output, /Response verify OK/);
    assert.match(summary.output, /leaf\.pem: unknown\n/);
  });

  it('echoes a SHA-256 CertID so a SHA-256 client finds its answer', () => {
    const req = opensslRequest('req-sha256.der', ['-sha256']);
    assert.equal(req.certIds[0]!.hash, 'sha256');
    respond('sha256.der', req.certIds[0]!, { kind: 'good' }, req.nonce);
    assert.match(checkAgainstRequest('sha256.der', 'req-sha256.der').output, /Hash Algorithm: sha256/);
    const summary = checkLeaf('sha256.der', ['-sha256']);
    assert.match(summary.output, /Response verify OK/);
    assert.match(summary.output, /leaf\.pem: good\n/);
  });

  it('leaves the nonce out for a request without one, and OpenSSL notices a missing or wrong nonce', () => {
    const plain = opensslRequest('req-nononce.der', ['-no_nonce']);
    respond('plain.der', plain.certIds[0]!, { kind: 'good' }, plain.nonce);
    const ok = checkAgainstRequest('plain.der', 'req-nononce.der');
    assert.match(ok.output, /Response verify OK/);
    assert.doesNotMatch(ok.output, /OCSP Nonce|WARNING/);
    // The nonce check is live: the same response to a request that had a nonce, and a wrong nonce.
    assert.match(checkAgainstRequest('plain.der', 'req.der').output, /WARNING: no nonce in response/);
    respond('wrong-nonce.der', request.certIds[0]!, { kind: 'good' }, new Uint8Array(16).fill(1));
    assert.match(checkAgainstRequest('wrong-nonce.der', 'req.der').output, /Nonce Verify error/);
  });

  // RFC 9654 §2.1 wraps the nonce in an OCTET STRING; legacy clients put it bare in extnValue.
  // Clients compare the extension value byte for byte, so a bare nonce must come back bare: we
  // used to re-wrap it, and OpenSSL (like any client) saw a nonce mismatch.
  it('echoes a legacy bare nonce exactly as it was sent', () => {
    const bare = Buffer.alloc(20, 0xa5);
    const legacy = sequence(
      sequence(
        sequence(sequence(request.certIds[0]!.der)),
        tlv(0xa2, sequence(sequence(oid('1.3.6.1.5.5.7.48.1.2'), octetString(bare)))),
      ),
    );
    openssl.write('req-legacy.der', legacy);
    const der = respond('legacy.der', request.certIds[0]!, { kind: 'good' }, parseOcspRequest(legacy).nonce);
    const echoed = Buffer.concat([Buffer.from(oid('1.3.6.1.5.5.7.48.1.2')), Buffer.from(octetString(bare))]);
    assert.ok(Buffer.from(der).includes(echoed), 'the response carries the bare nonce as extnValue');
    const r = checkAgainstRequest('legacy.der', 'req-legacy.der');
    assert.match(r.output, /Response verify OK/);
    assert.doesNotMatch(r.output, /WARNING|Nonce Verify error/);
  });

  it('is refused by OpenSSL when the signing key is not the certificate sent', () => {
    const stranger = { signer: createSigner(generateKeyPair('EC-P256').privateKey), certificateDer: responderCa.der };
    respond('stranger.der', request.certIds[0]!, { kind: 'good' }, null, stranger);
    const r = checkLeaf('stranger.der');
    assert.doesNotMatch(r.output, /Response verify OK/);
    assert.match(r.output, /Response Verify Failure/);
  });

  it('has the RFC 6960 shape: no version, byKey responder, GeneralizedTime, whole seconds, the certificate', () => {
    const der = buildOcspResponse({
      responder,
      producedAt: new Date(NOW.getTime() + 999),
      responses: [{ certId: request.certIds[0]!, status: { kind: 'good' }, thisUpdate: NOW, nextUpdate: at(HOUR) }],
      nonce: null,
    });
    const kids = (buf: Uint8Array, t = readTlv(buf, 0)) => readChildren(buf, t);
    const [status, bytes] = kids(der);
    assert.deepEqual([...der.subarray(status!.start, status!.end)], [0x0a, 0x01, 0x00]);
    const [type, octets] = kids(der, kids(der, bytes!)[0]!);
    assert.equal(Buffer.from(der.subarray(type!.start, type!.end)).toString('hex'), '06092b0601050507300101');
    const basic = der.subarray(octets!.contentStart, octets!.end);
    const [tbs, , , certs] = kids(basic);
    const fields = kids(basic, tbs!);
    assert.deepEqual(
      fields.map((f) => f.tag),
      [0xa2, 0x18, 0x30],
    );
    const keyHash = readTlv(basic, fields[0]!.contentStart);
    assert.deepEqual(
      basic.subarray(keyHash.contentStart, keyHash.end),
      responderKeyHash(responderCa.signer.publicKey.spki),
    );
    assert.equal(
      Buffer.from(basic.subarray(fields[1]!.contentStart, fields[1]!.end)).toString('ascii'),
      '20300101000000Z',
    );
    const single = kids(basic, kids(basic, fields[2]!)[0]!);
    assert.deepEqual(basic.subarray(single[0]!.start, single[0]!.end), request.certIds[0]!.der);
    assert.deepEqual([...basic.subarray(single[1]!.start, single[1]!.end)], [0x80, 0x00]);
    const certList = kids(basic, certs!)[0]!;
    assert.deepEqual(basic.subarray(certList.contentStart, certList.end), responderCa.der);
  });

  it('signs thousands of responses a second', () => {
    const input = {
      responder,
      producedAt: NOW,
      responses: [
        { certId: request.certIds[0]!, status: { kind: 'good' } as const, thisUpdate: NOW, nextUpdate: at(HOUR) },
      ],
      nonce: null,
    };
    for (let i = 0; i < 100; i++) buildOcspResponse(input);
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < 300) {
      buildOcspResponse(input);
      n++;
    }
    const perSecond = n / ((performance.now() - start) / 1000);
    // Typically 15–25k/s with P-256; the floor leaves room for a slow, busy CI machine.
    assert.ok(perSecond > 1000, `${Math.round(perSecond)} responses/s`);
  });
});

describe('ocspErrorResponse', () => {
  const EXPECTED = [
    ['malformedRequest', 1, 'malformedrequest'],
    ['internalError', 2, 'internalerror'],
    ['tryLater', 3, 'trylater'],
    ['sigRequired', 5, 'sigrequired'],
    ['unauthorized', 6, 'unauthorized'],
  ] as const;
  for (const [status, code, printed] of EXPECTED) {
    it(`encodes ${status} as SEQUENCE { ENUMERATED ${code} } that OpenSSL reads`, () => {
      const der = ocspErrorResponse(status);
      assert.deepEqual([...der], [0x30, 0x03, 0x0a, 0x01, code]);
      openssl.write(`${status}.der`, der);
      assert.match(
        openssl.try(['ocsp', '-respin', `${status}.der`, '-resp_text']).output,
        new RegExp(`Responder Error: ${printed} \\(${code}\\)`),
      );
    });
  }
});
