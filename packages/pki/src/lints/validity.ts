import type { Lint } from './lint.js';

/** RFC 5280 §4.1.2.5: a validity period must not end before it begins. */
export const validityOrdered: Lint = {
  name: 'validity_ordered',
  check: (d) => (d.notAfter.getTime() > d.notBefore.getTime() ? null : 'notAfter is not after notBefore'),
};

/** RFC 5280 §6.1.3 (a)(2): a certificate outliving its issuer fails path validation when it matters most. */
export const validityWithinIssuer: Lint = {
  name: 'validity_within_issuer',
  check: (d, ctx) => {
    if (ctx.issuer === null) return null;
    if (d.notAfter.getTime() > ctx.issuer.notAfter.getTime())
      return `notAfter ${d.notAfter.toISOString()} is past the issuer's ${ctx.issuer.notAfter.toISOString()}`;
    if (d.notBefore.getTime() < ctx.issuer.notBefore.getTime())
      return `notBefore ${d.notBefore.toISOString()} is before the issuer's`;
    return null;
  },
};

/** Shortleaf's policy: a leaf never lives longer than its provisioner's maximum (plus the 1-minute backdate). */
export const validityWithinPolicy: Lint = {
  name: 'validity_within_policy',
  check: (d, ctx) => {
    if (ctx.maxLifetimeMs === undefined) return null;
    const lifetime = d.notAfter.getTime() - d.notBefore.getTime();
    return lifetime <= ctx.maxLifetimeMs + 60_000
      ? null
      : `lifetime ${lifetime} ms exceeds the policy maximum ${ctx.maxLifetimeMs} ms`;
  },
};

/**
 * RFC 6960 §4.2.2.2.1: a responder certificate with id-pkix-ocsp-nocheck cannot be revoked, so
 * "the CA SHOULD issue it with a short lifetime"; the profile says how short.
 */
export const validityWithinProfile: Lint = {
  name: 'validity_within_profile',
  check: (d, { rules }) => {
    if (rules.maxValidityMs === undefined) return null;
    const lifetime = d.notAfter.getTime() - d.notBefore.getTime();
    return lifetime <= rules.maxValidityMs
      ? null
      : `an ${d.profile} certificate may live at most ${Math.floor(rules.maxValidityMs / 86_400_000)} days, not ${Math.floor(lifetime / 86_400_000)}`;
  },
};

/** RFC 5280 §4.1.2.5: times are encoded in whole seconds; fractions would be dropped silently. */
export const validityWholeSeconds: Lint = {
  name: 'validity_whole_seconds',
  check: (d) =>
    d.notBefore.getUTCMilliseconds() === 0 && d.notAfter.getUTCMilliseconds() === 0
      ? null
      : 'validity times carry milliseconds',
};
