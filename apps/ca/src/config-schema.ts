import { parseDuration } from '@shortleaf/authority';

/**
 * The building blocks of the configuration schema: each key is one `Field` saying what the file
 * may hold (`expected` completes "has the wrong type (expected …)"), its default as an operator
 * would write it in the file, a doc line, and what the loaded configuration holds. Durations are
 * parsed here, once, into milliseconds (Boulder's `config/duration.go`), so nothing downstream
 * re-parses `"24h"`. The loaded type is inferred from the schema (`Loaded<typeof SCHEMA>`), so
 * defaults, validation and type cannot drift apart.
 */
export class Field<T> {
  constructor(
    /** Completes "has the wrong type (expected …)". */
    readonly expected: string,
    /** The default, as written in the file. */
    readonly fileDefault: unknown,
    readonly doc: string,
    /** Whether a value from the file has the right type (checked for the whole file before anything loads). */
    readonly accepts: (v: unknown) => boolean,
    /** Turns an accepted value (or the default) into its loaded form; throws ConfigError when the value itself is refused. */
    readonly load: (v: unknown, path: string) => T,
  ) {}
}

export type Schema = { readonly [key: string]: Field<unknown> | Schema };

/** The loaded configuration a schema describes. */
export type Loaded<S extends Schema> = {
  -readonly [K in keyof S]: S[K] extends Field<infer T> ? T : S[K] extends Schema ? Loaded<S[K]> : never;
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isDuration = (v: unknown): boolean => {
  try {
    return typeof v === 'string' && parseDuration(v) > 0;
  } catch {
    return false;
  }
};
const same = <T>(v: unknown): T => v as T;

export const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** The kinds of key the configuration has. */
export const field = {
  boolean: (fileDefault: boolean, doc: string) =>
    new Field<boolean>('true or false', fileDefault, doc, (v) => typeof v === 'boolean', same),
  string: (fileDefault: string, doc: string) =>
    new Field<string>('string', fileDefault, doc, (v) => typeof v === 'string', same),
  optionalString: (doc: string) =>
    new Field<string | null>('string?', null, doc, (v) => v === null || typeof v === 'string', same),
  strings: (fileDefault: readonly string[], doc: string) =>
    new Field<string[]>('string[]', fileDefault, doc, isStrings, (v) => [...(v as string[])]),
  optionalStrings: (doc: string) =>
    new Field<string[] | null>(
      'string[]?',
      null,
      doc,
      (v) => v === null || isStrings(v),
      (v) => (v === null ? null : [...(v as string[])]),
    ),
  stringMap: (doc: string) =>
    new Field<Record<string, string>>(
      'an object of strings',
      {},
      doc,
      (v) => isObject(v) && Object.values(v).every((x) => typeof x === 'string'),
      (v) => ({ ...(v as Record<string, string>) }),
    ),
  /** A positive integer. */
  count: (fileDefault: number, doc: string) =>
    new Field<number>('number', fileDefault, doc, (v) => typeof v === 'number' && Number.isInteger(v) && v > 0, same),
  level: (fileDefault: (typeof LEVELS)[number], doc: string) =>
    new Field<(typeof LEVELS)[number]>(
      'level',
      fileDefault,
      doc,
      (v) => (LEVELS as readonly unknown[]).includes(v),
      same,
    ),
  /** A positive duration ("30s", "1h30m"); loads as milliseconds. */
  duration: (fileDefault: string, doc: string) =>
    new Field<number>('a duration such as "30s", "8h" or "7d"', fileDefault, doc, isDuration, (v) =>
      parseDuration(v as string),
    ),
  /** A duration that may be zero ("0s"); loads as milliseconds. */
  durationOrZero: (fileDefault: string, doc: string) =>
    new Field<number>(
      'a duration such as "0s", "5m" or "1h"',
      fileDefault,
      doc,
      (v) => isDuration(v) || (typeof v === 'string' && /^(0{1,6}[smhd])+$/.test(v)),
      (v) => parseDuration(v as string),
    ),
  /**
   * Any string, whose refusal as a duration is reported by `load` as "<key>: <why>" rather than
   * as a wrong type (how `serverCertificateLifetime` has always answered); loads as milliseconds.
   */
  lifetime: (fileDefault: string, doc: string) =>
    new Field<number>(
      'string',
      fileDefault,
      doc,
      (v) => typeof v === 'string',
      (v, path) => {
        try {
          return parseDuration(v as string);
        } catch (err) {
          throw new ConfigError(`${path}: ${(err as Error).message}`);
        }
      },
    ),
  /** Any JSON object, handed to its own parser (which throws ConfigError). */
  object: <T>(doc: string, load: (v: unknown) => T) => new Field<T>('an object', undefined, doc, isObject, load),
};

/** Refuses unknown keys and values of the wrong type anywhere in the file, naming the key. */
export function checkTypes(value: Record<string, unknown>, schema: Schema, prefix = ''): void {
  for (const [key, v] of Object.entries(value)) {
    const path = `${prefix}${key}`;
    const want = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (want === undefined) {
      const known = Object.keys(schema)
        .map((k) => `${prefix}${k}`)
        .join(', ');
      throw new ConfigError(`unknown configuration key "${path}" (known keys: ${known})`);
    }
    const ok = want instanceof Field ? want.accepts(v) : isObject(v);
    if (!ok)
      throw new ConfigError(
        `configuration key "${path}" has the wrong type (expected ${want instanceof Field ? want.expected : 'an object'})`,
      );
    if (!(want instanceof Field)) checkTypes(v as Record<string, unknown>, want, `${path}.`);
  }
}

/** Loads a type-checked document: every key from the file or its default, nested groups merged key by key. */
export function loadSchema<S extends Schema>(schema: S, doc: Record<string, unknown>, prefix = ''): Loaded<S> {
  const out: Record<string, unknown> = {};
  for (const [key, want] of Object.entries(schema)) {
    const v = Object.hasOwn(doc, key) ? doc[key] : undefined;
    out[key] =
      want instanceof Field
        ? want.load(v === undefined ? want.fileDefault : v, `${prefix}${key}`)
        : loadSchema(want, (v ?? {}) as Record<string, unknown>, `${prefix}${key}.`);
  }
  return out as Loaded<S>;
}

/** One row per key, for documentation (README, `--help`, the console): key, expected value, default as written in the file, doc. */
export function describeSchema(
  schema: Schema,
  prefix = '',
): { key: string; expected: string; default: unknown; doc: string }[] {
  return Object.entries(schema).flatMap(([key, want]) =>
    want instanceof Field
      ? [{ key: `${prefix}${key}`, expected: want.expected, default: want.fileDefault, doc: want.doc }]
      : describeSchema(want, `${prefix}${key}.`),
  );
}
