/**
 * Every problem document a Shortleaf listener writes (RFC 7807 §3.1) has a `type` of this prefix
 * followed by the error's stable code, such as `urn:shortleaf:problem:tokenReplayed`. The servers
 * build types with it and the agent and CLI read codes back with it, so the two never drift.
 */
export const PROBLEM_TYPE_PREFIX = 'urn:shortleaf:problem:';

/** The problem type for a stable error code. */
export function problemType(code: string): string {
  return `${PROBLEM_TYPE_PREFIX}${code}`;
}

/**
 * The stable code of a Shortleaf problem type; a type without the prefix (another server's, or
 * `unknown` when the body was not a problem document) is returned as it is, so callers still
 * have something to show.
 */
export function problemCode(type: string): string {
  return type.startsWith(PROBLEM_TYPE_PREFIX) ? type.slice(PROBLEM_TYPE_PREFIX.length) : type;
}
