import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in how a command was called; main prints it with the usage and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * The command was stopped by SIGTERM or SIGINT before it finished (serve waiting for its
 * database): what the operator asked for, so main exits 0 without an error line.
 */
export class Stopped extends Error {
  override readonly name = 'Stopped';
  constructor(readonly signal: string) {
    super(`stopped by ${signal}`);
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

export type Values<O extends Options> = {
  [K in keyof O]?: O[K] extends { multiple: true } ? string[] : O[K] extends { type: 'boolean' } ? boolean : string;
};

/** Parses a verb's arguments strictly: an unknown flag is a usage error naming it. */
export function parse<O extends Options>(
  args: string[],
  options: O,
  required: readonly (keyof O & string)[] = [],
): { values: Values<O>; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = parsed.values as Values<O>;
  for (const key of required) {
    if (values[key] === undefined) throw new UsageError(`--${key} is required`);
  }
  return { values, positionals: parsed.positionals };
}

/** Prints a result line for people (stdout), keeping logs (stderr) separate. */
export const out = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};
