import type { Context } from 'hono';
import { ApiError } from './problems.js';

/** Deepest JSON nesting we parse; our requests are flat objects. */
export const MAX_JSON_DEPTH = 8;

function depth(value: unknown, level = 0): number {
  if (level > MAX_JSON_DEPTH) return level;
  if (value === null || typeof value !== 'object') return level;
  let max = level + 1;
  for (const v of Object.values(value)) max = Math.max(max, depth(v, level + 1));
  return max;
}

/**
 * Reads a JSON object body with exactly the allowed keys. The size limit is enforced while the
 * body streams in (see the app's bodyLimit), so a huge body is refused before it is buffered.
 */
export async function readJsonObject(c: Context, allowed: readonly string[]): Promise<Record<string, unknown>> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new ApiError('unsupportedMediaType', 'send the request body as application/json');
  }
  const text = await c.req.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError('badJson', 'the request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ApiError('badRequest', 'the request body must be a JSON object');
  if (depth(value) > MAX_JSON_DEPTH) throw new ApiError('badRequest', `the request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new ApiError('badRequest', `unknown field "${key}" (allowed: ${allowed.join(', ')})`);
  }
  return value as Record<string, unknown>;
}
