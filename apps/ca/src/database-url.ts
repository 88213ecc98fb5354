/**
 * What is wrong with `text` as a PostgreSQL URL (`postgres://` or `postgresql://`, as libpq and
 * `pg` accept), or null when nothing is; `source` names where it came from (`--database`,
 * `SHORTLEAF_DATABASE_URL`, `database.url`). The message never repeats the URL, which may carry a
 * password.
 */
export function databaseUrlProblem(text: string, source: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${source} must be a PostgreSQL URL such as postgres://USER@HOST:5432/DB`;
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    return `${source} must be a postgres:// or postgresql:// URL, not ${url.protocol}//…`;
  if (url.host === '' && !url.searchParams.has('host')) return `${source} names no host: postgres://USER@HOST:5432/DB`;
  return null;
}

// Query parameters libpq and pg read a secret from.
const SECRET_PARAMS = ['password', 'sslpassword'];

/**
 * The URL with its password (in the userinfo or a `?password=` parameter) replaced by `***`, for
 * logs and messages: operators see which server and user, never the secret.
 */
export function redactDatabaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return redactUrlsIn(text);
  }
  if (url.password !== '') url.password = '***';
  for (const name of SECRET_PARAMS) if (url.searchParams.has(name)) url.searchParams.set(name, '***');
  return url.toString().replace(/%2A%2A%2A/g, '***');
}

// scheme://user:password@ — the userinfo ends at the last `@` before the path.
const USERINFO_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s/?#]*@/gi;
const QUERY_PASSWORD = new RegExp(`([?&](?:${SECRET_PARAMS.join('|')})=)[^\\s&#]*`, 'gi');

/**
 * Any URL password inside free text (an error message a driver wrote, a usage line) replaced by
 * `***`: the last guard before text reaches a terminal or a log line.
 */
export function redactUrlsIn(text: string): string {
  return text.replace(USERINFO_PASSWORD, '$1***@').replace(QUERY_PASSWORD, '$1***');
}
