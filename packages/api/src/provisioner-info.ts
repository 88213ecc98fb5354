/** A provisioner as the store keeps it: enough to say what a client may know of it. */
export interface StoredProvisioner {
  name: string;
  type: string;
  /** JSON of the type's options, when it has any. */
  options?: string;
}

/**
 * What `shortleaf login` needs to start an OpenID Connect sign-in at the identity provider: where
 * the provider is (its discovery document lives under `issuer`), which client the ID token must be
 * minted for (the provisioner's audience), and which scopes make the provider put the claims a
 * template uses (`{email}`) into it. All of it is public by nature: a browser sees each of these
 * in the authorization URL. Nothing else of the provisioner (keys, policy) is told.
 */
export interface OidcLoginInfo {
  issuer: string;
  clientId: string;
  scopes: string[];
}

/** `GET /api/v1/provisioners/NAME`: a provisioner's name and type, and its login details if it has any. */
export interface ProvisionerInfo {
  name: string;
  type: string;
  oidc?: OidcLoginInfo;
}

/** The scopes asked for when the provisioner names none: an ID token with the user's email and profile. */
export const DEFAULT_OIDC_SCOPES: readonly string[] = ['openid', 'email', 'profile'];

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

function readOptions(row: StoredProvisioner): Record<string, unknown> {
  if (row.options === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(row.options);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    // The authority refuses such a row when a token names it; here it only has no login details.
    return {};
  }
}

/**
 * The public view of a stored provisioner. Only an `oidc` provisioner gets login details: its
 * `issuer` and `audience` (the OAuth client id its ID tokens carry in `aud`) are exactly what the
 * provider shows in its login URL. A Kubernetes provisioner's audience is no secret either, but
 * nobody logs in with it, so it is not told.
 */
export function provisionerInfo(row: StoredProvisioner): ProvisionerInfo {
  const info: ProvisionerInfo = { name: row.name, type: row.type };
  if (row.type !== 'oidc') return info;
  const options = readOptions(row);
  const { issuer, audience, scopes } = options;
  if (typeof issuer !== 'string' || typeof audience !== 'string') return info;
  const asked = isStringList(scopes) && scopes.length > 0 ? scopes : [...DEFAULT_OIDC_SCOPES];
  // OpenID Connect Core §3.1.2.1: without `openid` the request is plain OAuth and yields no ID token.
  info.oidc = { issuer, clientId: audience, scopes: asked.includes('openid') ? asked : ['openid', ...asked] };
  return info;
}
