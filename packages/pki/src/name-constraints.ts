import { Buffer } from 'node:buffer';
import { readChildren, readTlv } from './der.js';
import { PkiError } from './errors.js';
import { x509 } from './x509.js';

/** The GeneralName forms a name constraint can name (RFC 5280 §4.2.1.10), by their context tag. */
export type ConstraintKind = 'email' | 'dns' | 'uri' | 'ip' | 'dirName' | 'other';

/** One GeneralSubtree's base: its kind and value (text for the IA5 forms, hex bytes otherwise). */
export interface Subtree {
  kind: ConstraintKind;
  value: string;
}

/** The whole NameConstraints extension of a CA certificate; null when it carries none. */
export interface NameConstraintSet {
  permitted: Subtree[];
  excluded: Subtree[];
}

const KIND_BY_TAG: Record<number, ConstraintKind> = {
  0x81: 'email',
  0x82: 'dns',
  0x86: 'uri',
  0x87: 'ip',
  0xa4: 'dirName',
};
const IA5_KINDS: ReadonlySet<ConstraintKind> = new Set(['email', 'dns', 'uri']);
const NAME_CONSTRAINTS_OID = '2.5.29.30';

/**
 * Reads every permitted and excluded subtree of a certificate's NameConstraints, of every name
 * form, not only those Shortleaf writes: an intermediate signed elsewhere may carry any of them.
 */
export function readNameConstraintSet(certificateDer: Uint8Array): NameConstraintSet | null {
  const ext = new x509.X509Certificate(certificateDer).getExtension(NAME_CONSTRAINTS_OID);
  if (ext === null) return null;
  const value = new Uint8Array(ext.value);
  const set: NameConstraintSet = { permitted: [], excluded: [] };
  for (const subtrees of readChildren(value, readTlv(value, 0))) {
    if (subtrees.tag !== 0xa0 && subtrees.tag !== 0xa1)
      throw new PkiError('badDer', 'NameConstraints holds something other than permitted or excluded subtrees');
    const list = subtrees.tag === 0xa0 ? set.permitted : set.excluded;
    for (const subtree of readChildren(value, subtrees)) {
      const base = readChildren(value, subtree)[0];
      if (base === undefined) throw new PkiError('badDer', 'a GeneralSubtree without a base');
      const kind = KIND_BY_TAG[base.tag] ?? 'other';
      const bytes = Buffer.from(value.subarray(kind === 'other' ? base.start : base.contentStart, base.end));
      list.push({ kind, value: IA5_KINDS.has(kind) ? bytes.toString('ascii').toLowerCase() : bytes.toString('hex') });
    }
  }
  return set;
}

/**
 * Whether every name subtree `a` admits, subtree `b` admits too (both of one kind), by the
 * matching rules of RFC 5280 §4.2.1.10 as verifiers apply them. When in doubt it answers false,
 * which errs toward calling a constraint wider.
 */
export function subtreeWithin(a: Subtree, b: Subtree): boolean {
  if (a.kind !== b.kind) return false;
  if (a.value === b.value) return true;
  switch (a.kind) {
    case 'dns':
      // "example.com" admits it and every name below it; ".example.com" only names below it.
      if (b.value === '') return true;
      return b.value.startsWith('.') ? a.value.endsWith(b.value) : a.value.endsWith(`.${b.value}`);
    case 'uri':
      // A host admits only itself; ".example.com" admits every host below it.
      return b.value.startsWith('.') && a.value.endsWith(b.value);
    case 'email': {
      // "user@host" one mailbox; "host" every mailbox at it; ".example.com" every host below it.
      if (b.value.includes('@')) return false;
      const domain = a.value.includes('@') ? a.value.slice(a.value.indexOf('@') + 1) : a.value;
      if (b.value.startsWith('.')) return domain.endsWith(b.value);
      return a.value.includes('@') && domain === b.value;
    }
    case 'ip': {
      // Address then mask, of one family; a's range lies in b's when a's mask covers b's and
      // the addresses agree under b's mask.
      const x = Buffer.from(a.value, 'hex');
      const y = Buffer.from(b.value, 'hex');
      if (x.length !== y.length || (x.length !== 8 && x.length !== 32)) return false;
      const n = x.length / 2;
      for (let i = 0; i < n; i++) {
        const bMask = y[n + i]!;
        if ((x[n + i]! & bMask) !== bMask || (x[i]! & bMask) !== (y[i]! & bMask)) return false;
      }
      return true;
    }
    default:
      // Directory names and the rarer forms: only an identical subtree is known to be within.
      return false;
  }
}

// Whether no name can be in both subtrees. The hierarchical forms nest or are disjoint; for the
// others disjointness is not proved, so they count as overlapping.
function disjoint(a: Subtree, b: Subtree): boolean {
  if (a.kind !== b.kind) return true;
  if (a.kind === 'dirName' || a.kind === 'other') return false;
  return !subtreeWithin(a, b) && !subtreeWithin(b, a);
}

const show = (s: Subtree): string => `${s.kind}:${s.value === '' ? '(any)' : s.value}`;

/**
 * Compares the name constraints of an intermediate about to replace another: returns, in words,
 * every way `next` admits a name that `current` does not (empty when it is at least as
 * constrained). Per name form, as constraints apply (RFC 5280 §4.2.1.10): a form `current`
 * permits only some names of must be permitted in `next` too, each subtree within one of
 * `current`'s; and every name `current` excludes stays out of reach, excluded again or outside
 * every permitted subtree of `next`.
 */
export function widerConstraints(next: NameConstraintSet | null, current: NameConstraintSet | null): string[] {
  if (current === null) return [];
  const reasons: string[] = [];
  const permittedNext = next?.permitted ?? [];
  const excludedNext = next?.excluded ?? [];
  for (const kind of new Set(current.permitted.map((s) => s.kind))) {
    const old = current.permitted.filter((s) => s.kind === kind);
    const now = permittedNext.filter((s) => s.kind === kind);
    if (now.length === 0) {
      reasons.push(
        `${kind} names are no longer limited (the current intermediate permits only ${old.map(show).join(', ')})`,
      );
      continue;
    }
    for (const s of now)
      if (!old.some((o) => subtreeWithin(s, o)))
        reasons.push(`it permits ${show(s)}, which is within none of ${old.map(show).join(', ')}`);
  }
  for (const e of current.excluded) {
    if (excludedNext.some((x) => subtreeWithin(e, x))) continue;
    const permitted = permittedNext.filter((s) => s.kind === e.kind);
    if (permitted.length > 0 && permitted.every((s) => disjoint(s, e))) continue;
    reasons.push(`it no longer excludes ${show(e)}`);
  }
  return reasons;
}
