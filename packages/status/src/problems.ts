import { problemType } from '@shortleaf/client';

/**
 * Every problem the status listeners answer with, and its one status. A failure is 503, not 500:
 * a relying party retries a status fetch later, and the cause is in the log. A new code needs a
 * row here before it compiles.
 */
export const STATUS_PROBLEMS = {
  notFound: 404,
  bodyTooLarge: 413,
  unsupportedMediaType: 415,
  internal: 503,
} as const satisfies Record<string, number>;

export type StatusProblemCode = keyof typeof STATUS_PROBLEMS;

/**
 * An RFC 7807 problem document as the status listeners write it: the Shortleaf type for `code`,
 * the code as title, the code's status. `detail` is written for the client and never carries a cause.
 */
export function statusProblem<C extends StatusProblemCode>(
  code: C,
  detail: string,
): { status: (typeof STATUS_PROBLEMS)[C]; body: string } {
  const status = STATUS_PROBLEMS[code];
  return { status, body: JSON.stringify({ type: problemType(code), title: code, status, detail }) };
}
