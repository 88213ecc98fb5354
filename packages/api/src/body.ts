import type { Context } from 'hono';
import { ApiError } from './problems.js';

/** Deepest JSON nesting we parse unless configured (`limits.maxJsonDepth`); our requests are flat objects. */
export const MAX_JSON_DEPTH = 8;

function depth(value: unknown, max: number, level = 0): number {
  if (level > max) return level;
  if (value === null || typeof value !== 'object') return level;
  let deepest = level + 1;
  for (const v of Object.values(value)) deepest = Math.max(deepest, depth(v, max, level + 1));
  return deepest;
}

/**
 * Reads a JSON object body with exactly the allowed keys. The size limit is enforced while the
 * body streams in (see the app's bodyLimit), so a huge body is refused before it is buffered.
 */
export async function readJsonObject(
  c: Context,
  allowed: readonly string[],
  maxDepth: number = MAX_JSON_DEPTH,
): Promise<Record<string, unknown>> {
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
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ApiError('badRequest', 'the request body must be a JSON object');
  if (depth(value, maxDepth) > maxDepth)
    throw new ApiError('badRequest', `the request body nests deeper than ${maxDepth} levels (limits.maxJsonDepth)`);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key))
      throw new ApiError('badRequest', `unknown field "${key}" (allowed: ${allowed.join(', ')})`);
  }
  return value as Record<string, unknown>;
}
