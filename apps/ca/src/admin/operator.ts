/**
 * Who takes an admin action: the person at the CLI (the OS user, worked out by the config module)
 * or, next, the one signed in to the console. Actions take it as a parameter and never guess it, so
 * the audit log names the same person whichever door the action came through.
 */
export interface Operator {
  kind: 'operator';
  name: string;
}

/** The audit log's actor for an operator: `operator:NAME`, as `shortleaf revoke` has always written. */
export const operatorActor = (operator: Operator): string => `operator:${operator.name}`;
