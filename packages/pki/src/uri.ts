import { PkiError } from './errors.js';
import { formatIp, parseIp } from './ip.js';

/**
 * A URI name parsed per RFC 3986 and in the one spelling we issue: scheme and host in lower case,
 * percent-encodings in upper case (RFC 3986 §6.2.2.1). Everything a relying party's normaliser
 * could rewrite into a different identity (dot segments, encoded slashes, encoded unreserved
 * characters, empty segments) is refused rather than rewritten, so what we match against a policy
 * is what every relying party reads.
 */
export interface ParsedUri {
  /** The canonical text, as it goes into the certificate. */
  text: string;
  scheme: string;
  /** `host[:port]`, or null when the URI has no `//` authority (e.g. `urn:`). */
  authority: string | null;
  host: string | null;
  path: string;
  /** The path split on `/`, without the empty segment before a leading `/`. */
  segments: readonly string[];
  query: string | null;
}

/** A URI rule of a name policy: one exact URI, or every URI one or more whole segments below a base. */
export type UriPattern = { exact: ParsedUri } | { below: ParsedUri };

// RFC 3986 Appendix B, the reference split into scheme, authority, path, query and fragment.
const SPLIT = /^(?:([^:/?#]+):)?(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;
// RFC 3986 §2: unreserved, reserved (gen-delims and sub-delims) and "%". Anything else is not a URI.
const URI_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/;
const PCHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%]*$/;
const REG_NAME = /^[A-Za-z0-9\-._~!$&'()*+,;=]+$/;
const UNRESERVED = /[A-Za-z0-9\-._~]/;

// SPIFFE ID (SPIFFE-ID.md §2.1, §2.2): a lower-case trust domain, path segments of these only.
const SPIFFE_TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SPIFFE_SEGMENT = /^[A-Za-z0-9._-]+$/;
/** SPIFFE-ID.md §2.1 via RFC 3986: a trust domain is at most 255 bytes. */
const SPIFFE_MAX_TRUST_DOMAIN = 255;

function bad(raw: string, why: string): never {
  throw new PkiError('badName', `the URI ${JSON.stringify(raw)} ${why}`);
}

/** Upper-cases the hex of every percent-encoding after checking each is `%` and two hex digits (RFC 3986 §2.1). */
function canonicalPercent(raw: string, part: string): string {
  return part.replace(/%(.{0,2})/gs, (_, hex: string) => {
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) bad(raw, 'has a "%" that is not followed by two hex digits (RFC 3986 §2.1)');
    return `%${hex.toUpperCase()}`;
  });
}

const decodedByte = (enc: string): number => parseInt(enc.slice(1), 16);

/**
 * Checks one path segment. RFC 3986 §5.2.4 removes `.` and `..` segments, and §6.2.2.2 decodes an
 * encoded unreserved character, so `%2e%2e` is `..` to a relying party that normalises; an encoded
 * `/` or `\` is a separator to many (and `\` is one to WHATWG URL parsers).
 */
function checkSegment(raw: string, segment: string): void {
  const decoded = segment.replace(/%[0-9A-F]{2}/g, (e) => String.fromCharCode(decodedByte(e)));
  if (decoded === '.' || decoded === '..')
    bad(
      raw,
      `has the dot segment "${segment}": RFC 3986 §5.2.4 removes it, so relying parties would read a different path`,
    );
  for (const enc of segment.match(/%[0-9A-F]{2}/g) ?? []) {
    const byte = decodedByte(enc);
    if (byte === 0x2f || byte === 0x5c)
      bad(raw, `has an encoded slash "${enc}" in its path, which many relying parties decode into a path separator`);
    if (byte < 0x20 || byte === 0x7f) bad(raw, `has an encoded control character "${enc}"`);
    if (UNRESERVED.test(String.fromCharCode(byte)))
      bad(
        raw,
        `percent-encodes "${String.fromCharCode(byte)}" as "${enc}": write it as is (RFC 3986 §2.3 makes the two spellings the same URI)`,
      );
  }
}

/** Lower-cases and checks a host (RFC 3986 §3.2.2): a bracketed IPv6 literal or a registered name. */
function parseHost(raw: string, host: string): string {
  if (host.startsWith('[')) {
    const inner = host.endsWith(']') ? host.slice(1, -1) : '';
    const ip = parseIp(inner);
    if (ip === null || ip.length !== 16) bad(raw, 'has a bracketed host that is not an IPv6 address');
    return `[${formatIp(ip)}]`;
  }
  if (host.includes('%')) bad(raw, 'has a percent-encoded host');
  if (!REG_NAME.test(host)) bad(raw, 'has an invalid host');
  return host.toLowerCase();
}

function parseAuthority(raw: string, authority: string): { host: string; port: string | null } {
  // RFC 3986 §7.6 and RFC 9110 §4.2.4: userinfo makes `https://trusted@other/` read as trusted to people.
  if (authority.includes('@')) bad(raw, 'has userinfo ("…@") in its authority, which is refused');
  if (authority === '') bad(raw, 'has "//" but no host');
  const m = /^(\[[^\]]*\]|[^:[\]]*)(?::(.*))?$/.exec(authority);
  if (m === null) bad(raw, 'has an invalid authority');
  const port = m[2] ?? null;
  if (port !== null && !/^[0-9]{1,5}$/.test(port)) bad(raw, 'has an empty or invalid port');
  if (m[1] === '') bad(raw, 'has no host');
  return { host: parseHost(raw, m[1]!), port };
}

/** The SPIFFE ID rules (SPIFFE-ID.md §2; X509-SVID.md §3.1 for the non-root path of a leaf). */
function checkSpiffe(
  raw: string,
  u: ParsedUri,
  fragment: string | null,
  hostAsWritten: string | null,
  port: string | null,
  opts: { base: boolean },
): void {
  if (u.authority === null || hostAsWritten === null)
    bad(raw, 'is not a SPIFFE ID: it needs a trust domain, spiffe://TRUST-DOMAIN/PATH');
  if (port !== null) bad(raw, 'is not a SPIFFE ID: a trust domain has no port (SPIFFE-ID.md §2.1)');
  if (!SPIFFE_TRUST_DOMAIN.test(hostAsWritten))
    bad(
      raw,
      'is not a SPIFFE ID: a trust domain has only lower-case letters, digits, ".", "-" and "_" (SPIFFE-ID.md §2.1)',
    );
  if (hostAsWritten.length > SPIFFE_MAX_TRUST_DOMAIN)
    bad(raw, `is not a SPIFFE ID: its trust domain is longer than ${SPIFFE_MAX_TRUST_DOMAIN} bytes`);
  if (u.query !== null || fragment !== null)
    bad(raw, 'is not a SPIFFE ID: it has a query or fragment (SPIFFE-ID.md §2)');
  if (u.path === '' && !opts.base)
    bad(raw, 'is not a leaf SPIFFE ID: it needs a path below the trust domain (X509-SVID.md §3.1)');
  for (const s of u.segments) {
    if (!SPIFFE_SEGMENT.test(s)) {
      bad(
        raw,
        s === ''
          ? 'is not a SPIFFE ID: a path has no empty segment and no trailing "/" (SPIFFE-ID.md §2.2)'
          : `is not a SPIFFE ID: the path segment "${s}" may hold only letters, digits, ".", "-" and "_" (SPIFFE-ID.md §2.2)`,
      );
    }
  }
}

/**
 * Parses a URI name per RFC 3986 and refuses what could make it name something other than it
 * appears to: anything but RFC 3986 characters, dot segments and encoded slashes (raw or
 * percent-encoded, any case), encoded unreserved characters and controls, empty path segments
 * other than a trailing `/`, userinfo, and a fragment (RFC 3986 §3.5: it is never part of what
 * identifies the resource). `spiffe:` URIs must also be valid leaf SPIFFE IDs, which rules out
 * a query too. RFC 5280 §4.2.1.6: a URI name is absolute, with a scheme.
 *
 * `base` parses the base of a `…/*` policy pattern, which may be a bare SPIFFE trust domain.
 */
export function parseUri(raw: string, opts: { base?: boolean } = {}): ParsedUri {
  if (!URI_CHARS.test(raw)) {
    const c = [...raw].find((ch) => !URI_CHARS.test(ch)) ?? '';
    bad(raw, `has the character ${JSON.stringify(c)}, which RFC 3986 §2 does not allow (percent-encode it)`);
  }
  const m = SPLIT.exec(raw);
  if (m === null || m[1] === undefined || !SCHEME.test(m[1]))
    bad(raw, 'has no scheme (RFC 5280 §4.2.1.6: a URI name is absolute, such as spiffe://example.org/x)');
  const scheme = m[1].toLowerCase();
  const [, , rawAuthority, rawPath = '', rawQuery, rawFragment] = m;
  if (/[[\]]/.test(rawPath + (rawQuery ?? '') + (rawFragment ?? ''))) bad(raw, 'has "[" or "]" outside a host');
  const authority = rawAuthority === undefined ? null : parseAuthority(raw, canonicalPercent(raw, rawAuthority));
  const path = canonicalPercent(raw, rawPath);
  const query = rawQuery === undefined ? null : canonicalPercent(raw, rawQuery);
  const fragment = rawFragment === undefined ? null : rawFragment;
  if (authority !== null && path !== '' && !path.startsWith('/'))
    bad(raw, 'has a path that does not start with "/" after its host');
  if (authority === null && path === '') bad(raw, 'has nothing after its scheme');
  if (!PCHARS.test(path.replaceAll('/', ''))) bad(raw, 'has a path with characters RFC 3986 §3.3 does not allow');
  const segments = (path.startsWith('/') ? path.slice(1) : path).split('/');
  if (path === '') segments.length = 0;
  segments.forEach((s, i) => {
    // A trailing "/" is common in http URIs and changes nothing a normaliser would rewrite.
    if (s === '' && i < segments.length - 1)
      bad(raw, 'has an empty path segment ("//"), which some relying parties collapse');
    checkSegment(raw, s);
  });
  const authorityText =
    authority === null ? null : authority.port === null ? authority.host : `${authority.host}:${authority.port}`;
  const u: ParsedUri = {
    text: `${scheme}:${authorityText === null ? '' : `//${authorityText}`}${path}${query === null ? '' : `?${query}`}`,
    scheme,
    authority: authorityText,
    host: authority?.host ?? null,
    path,
    segments,
    query,
  };
  if (scheme === 'spiffe') {
    const writtenHost = rawAuthority === undefined ? null : rawAuthority.replace(/:.*$/, '');
    checkSpiffe(raw, u, fragment, writtenHost, authority?.port ?? null, { base: opts.base === true });
  }
  if (fragment !== null) bad(raw, 'has a fragment ("#…"), which never identifies anything by itself (RFC 3986 §3.5)');
  return u;
}

/**
 * Parses a URI rule of a name policy: an exact URI, or `BASE/*`, which matches every URI one or
 * more whole, non-empty path segments below BASE (same scheme and authority, no query). A `*`
 * anywhere else, such as `…/pay*`, is refused: it would match part of a segment.
 */
export function parseUriPattern(pattern: string): UriPattern {
  const star = pattern.indexOf('*');
  if (star >= 0 && (star !== pattern.length - 1 || !pattern.endsWith('/*'))) {
    throw new PkiError(
      'badName',
      `the URI pattern ${JSON.stringify(pattern)} may use "*" only as a whole last path segment, as in spiffe://example.org/ns/payments/*`,
    );
  }
  if (star < 0) return { exact: parseUri(pattern) };
  const base = parseUri(pattern.slice(0, -2), { base: true });
  if (base.query !== null)
    throw new PkiError('badName', `the URI pattern ${JSON.stringify(pattern)} has a query before "/*"`);
  if (base.path.endsWith('/'))
    throw new PkiError('badName', `the URI pattern ${JSON.stringify(pattern)} has "//" before "*"; write BASE/*`);
  return { below: base };
}

/** Whether a parsed URI name matches a parsed pattern, comparing scheme, authority and whole path segments. */
export function uriPatternMatches(name: ParsedUri, pattern: UriPattern): boolean {
  if ('exact' in pattern) return name.text === pattern.exact.text;
  const base = pattern.below;
  if (name.scheme !== base.scheme || name.authority !== base.authority || name.query !== null) return false;
  if (!name.path.startsWith(`${base.path}/`)) return false;
  const below = name.path.slice(base.path.length + 1).split('/');
  return below.every((s) => s !== '');
}
