import { Buffer } from 'node:buffer';
import { parseCrl } from './crl.js';
import { oid, readChildren, readTlv, splitSigned, type Tlv } from './der.js';
import { CRL_LINTS, type CrlLintContext, type CrlView } from './lints/crl.js';

const IDP_OID = Buffer.from(oid('2.5.29.28'));

/** Reads the IDP (RFC 5280 §5.2.5) from TBSCertList's crlExtensions [0], which parseCrl skips. */
function readIdp(tbs: Uint8Array, fields: Tlv[]): CrlView['idp'] {
  const wrapper = fields.find((f) => f.tag === 0xa0);
  if (wrapper === undefined) return null;
  const list = readChildren(tbs, wrapper)[0];
  if (list === undefined) return null;
  for (const ext of readChildren(tbs, list)) {
    const parts = readChildren(tbs, ext);
    const id = parts[0]!;
    if (!Buffer.from(tbs.subarray(id.start, id.end)).equals(IDP_OID)) continue;
    const critical = parts.length === 3 && tbs[parts[1]!.contentStart] === 0xff;
    const octets = parts[parts.length - 1]!;
    const idp = readTlv(tbs, octets.contentStart);
    const inside = readChildren(tbs, idp);
    const dp = inside[0];
    const fullName = dp?.tag === 0xa0 ? readChildren(tbs, dp)[0] : undefined;
    const names = fullName?.tag === 0xa0 ? readChildren(tbs, fullName) : [];
    const urls = names
      .filter((n) => n.tag === 0x86)
      .map((n) => Buffer.from(tbs.subarray(n.contentStart, n.end)).toString('latin1'));
    const onlyFullName = inside.length === 1 && fullName !== undefined && names.length === urls.length;
    return { critical, urls, onlyFullName };
  }
  return null;
}

/** Reads a CRL back from its bytes for the lints: parseCrl's fields plus the IDP and both algorithms. */
export function readCrlView(der: Uint8Array): CrlView {
  const crl = parseCrl(der);
  const outer = readChildren(der, readTlv(der, 0));
  const { tbs } = splitSigned(der);
  const fields = readChildren(tbs, readTlv(tbs, 0));
  const inner = fields[fields[0]?.tag === 0x02 ? 1 : 0]!;
  const outerAlg = outer[1]!;
  return {
    crl,
    idp: readIdp(tbs, fields),
    innerAlgorithmDer: tbs.subarray(inner.start, inner.end),
    outerAlgorithmDer: der.subarray(outerAlg.start, outerAlg.end),
  };
}

/** Runs every CRL lint on the bytes about to be published; failures as `name: reason`. */
export function lintCrl(der: Uint8Array, ctx: CrlLintContext): string[] {
  let view: CrlView;
  try {
    view = readCrlView(der);
  } catch (cause) {
    return [`crl_parses: the CRL does not parse: ${(cause as Error).message}`];
  }
  const failures: string[] = [];
  for (const lint of CRL_LINTS) {
    const reason = lint.check(view, ctx);
    if (reason !== null) failures.push(`${lint.name}: ${reason}`);
  }
  return failures;
}
