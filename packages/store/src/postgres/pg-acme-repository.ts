import type { PoolClient } from 'pg';
import type {
  AcmeAccountRecord,
  AcmeAccountStatus,
  AcmeAuthorizationRecord,
  AcmeAuthorizationStatus,
  AcmeChallengeRecord,
  AcmeChallengeStatus,
  AcmeChallengeType,
  AcmeEabKeyRecord,
  AcmeIdentifierRecord,
  AcmeOrderRecord,
  AcmeOrderStatus,
  AcmeProblemRecord,
  AcmeValidationOutcome,
} from '../contracts/acme.js';
import { StoreError } from '../contracts/errors.js';
import type { AcmeEngine } from '../contracts/store.js';
import type { PgContext } from './pg-context.js';
import { isForeignKeyViolation, isUniqueViolation } from './pg-errors.js';
import { fromProblemText, problemText } from '../engine-rules.js';

interface AccountRow {
  id: string;
  provisioner: string;
  thumbprint: string;
  jwk: string;
  status: AcmeAccountStatus;
  contact: string;
  eab_kid: string | null;
  created_at: Date;
}
interface EabKeyRow {
  kid: string;
  provisioner: string;
  sealed_key: Buffer;
  account_id: string | null;
  created_at: Date;
  bound_at: Date | null;
}
interface OrderRow {
  id: string;
  account_id: string;
  status: AcmeOrderStatus;
  identifiers: string;
  not_before: Date | null;
  not_after: Date | null;
  expires: Date;
  error: string | null;
  certificate_serial: string | null;
  replaces: string | null;
  replaces_serial: string | null;
  created_at: Date;
  /** Its authorizations' ids in position order, aggregated with the row. */
  authorization_ids: string[];
}
interface AuthorizationRow {
  id: string;
  account_id: string;
  identifier_type: 'dns' | 'ip';
  identifier_value: string;
  wildcard: boolean;
  status: AcmeAuthorizationStatus;
  expires: Date;
  created_at: Date;
}
interface ChallengeRow {
  id: string;
  authorization_id: string;
  type: AcmeChallengeType;
  token: string;
  status: AcmeChallengeStatus;
  validated: Date | null;
  error: string | null;
}

/** A challenge joined to its authorization (LEFT JOIN: the `c_` columns are null when it has none). */
type PrefixedChallengeRow =
  | { c_id: null }
  | {
      c_id: string;
      c_type: AcmeChallengeType;
      c_token: string;
      c_status: AcmeChallengeStatus;
      c_validated: Date | null;
      c_error: string | null;
    };

const toAccount = (r: AccountRow): AcmeAccountRecord => ({
  id: r.id,
  provisioner: r.provisioner,
  thumbprint: r.thumbprint,
  jwk: r.jwk,
  status: r.status,
  contact: JSON.parse(r.contact) as string[],
  eabKid: r.eab_kid,
  createdAt: r.created_at,
});
const toEabKey = (r: EabKeyRow): AcmeEabKeyRecord => ({
  kid: r.kid,
  provisioner: r.provisioner,
  sealedKey: r.sealed_key,
  accountId: r.account_id,
  createdAt: r.created_at,
  boundAt: r.bound_at,
});
const toOrder = (r: OrderRow): AcmeOrderRecord => ({
  id: r.id,
  accountId: r.account_id,
  status: r.status,
  identifiers: JSON.parse(r.identifiers) as AcmeIdentifierRecord[],
  authorizationIds: r.authorization_ids,
  notBefore: r.not_before,
  notAfter: r.not_after,
  expires: r.expires,
  error: fromProblemText(r.error),
  certificateSerial: r.certificate_serial,
  replaces: r.replaces,
  replacesSerial: r.replaces_serial,
  createdAt: r.created_at,
});
const toChallenge = (r: ChallengeRow): AcmeChallengeRecord => ({
  id: r.id,
  authorizationId: r.authorization_id,
  type: r.type,
  token: r.token,
  status: r.status,
  validated: r.validated,
  error: fromProblemText(r.error),
});
const toAuthorization = (r: AuthorizationRow, challenges: AcmeChallengeRecord[]): AcmeAuthorizationRecord => ({
  id: r.id,
  accountId: r.account_id,
  identifier: { type: r.identifier_type, value: r.identifier_value },
  wildcard: r.wildcard,
  status: r.status,
  expires: r.expires,
  challenges,
  createdAt: r.created_at,
});

const ACCOUNT_COLUMNS = 'id, provisioner, thumbprint, jwk, status, contact, eab_kid, created_at';
const EAB_KEY_COLUMNS = 'kid, provisioner, sealed_key, account_id, created_at, bound_at';
const AUTHORIZATION_COLUMNS =
  'id, account_id, identifier_type, identifier_value, wildcard, status, expires, created_at';
const CHALLENGE_COLUMNS = 'id, authorization_id, type, token, status, validated, error';
/** An authorization's columns and, prefixed `c_`, one of its challenges' (all null when it has none). */
const AUTHORIZATION_WITH_CHALLENGE_COLUMNS = [
  ...AUTHORIZATION_COLUMNS.split(', ').map((column) => `a.${column}`),
  ...['id', 'type', 'token', 'status', 'validated', 'error'].map((column) => `c.${column} AS c_${column}`),
].join(', ');
// An order with its authorization ids in one statement, so a reader never pairs an order with
// links from another moment.
const SELECT_ORDER = `SELECT o.id, o.account_id, o.status, o.identifiers, o.not_before, o.not_after, o.expires, o.error,
    o.certificate_serial, o.replaces, o.replaces_serial, o.created_at,
    ARRAY(SELECT l.authorization_id FROM acme_order_authorizations l WHERE l.order_id = o.id ORDER BY l.position) AS authorization_ids
  FROM acme_orders o`;

/** The unique index that lets one order at a time replace a certificate (RFC 9773 §5). */
const REPLACES_INDEX = 'acme_orders_replaces';

/**
 * ACME state on PostgreSQL, shared by every instance on the database: accounts and the EAB keys
 * that bind them, orders with their authorizations (shared between orders of an account when
 * reused) and challenges, and spent nonces. Every method is one transaction (READ COMMITTED). A
 * row that already exists is `conflict`, a missing one `notFound`, an EAB key used a second time
 * `eabKeyUsed`. The compare-and-set methods (`transitionOrder`, `startChallenge`) are single
 * conditional UPDATEs: of two instances racing, PostgreSQL re-checks the loser's condition against
 * the winner's committed row, so exactly one wins and the other gets false.
 */
export class PgAcmeRepository implements AcmeEngine {
  constructor(private readonly ctx: PgContext) {}

  // ── accounts ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Creates an account. With `eab`, binds that external account key to it in the same
   * transaction (RFC 8555 §7.3.4): a key that does not exist for this provisioner is `notFound`,
   * one already bound is `eabKeyUsed`, and either writes nothing. `a.eabKid` must name the same
   * key (or be null without `eab`). A key already registered with the provisioner is `conflict`.
   * The key's row is locked (FOR UPDATE) before anything is written, so of two instances binding
   * one key at once the second waits, then finds it bound.
   */
  async createAccount(a: AcmeAccountRecord, eab?: { kid: string; at: Date }): Promise<void> {
    if (a.eabKid !== (eab?.kid ?? null))
      throw new RangeError(
        `account eabKid ${String(a.eabKid)} does not match the EAB key being bound (${String(eab?.kid ?? null)})`,
      );
    await this.ctx.transaction(async (tx) => {
      if (eab !== undefined) {
        const { rows } = await tx.query<{ provisioner: string; account_id: string | null }>(
          'SELECT provisioner, account_id FROM acme_eab_keys WHERE kid = $1 FOR UPDATE',
          [eab.kid],
        );
        const key = rows[0];
        if (key === undefined || key.provisioner !== a.provisioner)
          throw new StoreError('notFound', `no EAB key ${eab.kid} for provisioner ${a.provisioner}`);
        if (key.account_id !== null)
          throw new StoreError('eabKeyUsed', `EAB key ${eab.kid} is already bound to an account`);
      }
      try {
        await tx.query(
          `INSERT INTO acme_accounts (id, provisioner, thumbprint, jwk, status, contact, eab_kid, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [a.id, a.provisioner, a.thumbprint, a.jwk, a.status, JSON.stringify(a.contact), a.eabKid, a.createdAt],
        );
      } catch (err) {
        if (isUniqueViolation(err))
          throw new StoreError(
            'conflict',
            `an account with this key (or id ${a.id}) already exists for provisioner ${a.provisioner}`,
            { cause: err },
          );
        if (isForeignKeyViolation(err))
          throw new StoreError('notFound', `no provisioner ${a.provisioner}`, { cause: err });
        throw err;
      }
      if (eab === undefined) return;
      // The compare-and-set is what guarantees one account per key, whatever ran before it.
      const bound = await tx.query(
        'UPDATE acme_eab_keys SET account_id = $1, bound_at = $2 WHERE kid = $3 AND account_id IS NULL',
        [a.id, eab.at, eab.kid],
      );
      if (bound.rowCount === 0) throw new StoreError('eabKeyUsed', `EAB key ${eab.kid} is already bound to an account`);
    });
  }

  /** The account with this id, or null. */
  async getAccount(id: string): Promise<AcmeAccountRecord | null> {
    const rows = await this.ctx.query<AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM acme_accounts WHERE id = $1`, [id]);
    return rows[0] === undefined ? null : toAccount(rows[0]);
  }

  /** The account of this provisioner whose key has this RFC 7638 thumbprint, or null. */
  async getAccountByThumbprint(provisioner: string, thumbprint: string): Promise<AcmeAccountRecord | null> {
    const rows = await this.ctx.query<AccountRow>(
      `SELECT ${ACCOUNT_COLUMNS} FROM acme_accounts WHERE provisioner = $1 AND thumbprint = $2`,
      [provisioner, thumbprint],
    );
    return rows[0] === undefined ? null : toAccount(rows[0]);
  }

  /** Changes the given fields only; `notFound` if there is no such account. */
  async updateAccount(id: string, change: { contact?: string[]; status?: AcmeAccountStatus }): Promise<void> {
    const contact = change.contact === undefined ? null : JSON.stringify(change.contact);
    const rows = await this.ctx.query(
      'UPDATE acme_accounts SET contact = COALESCE($1, contact), status = COALESCE($2, status) WHERE id = $3 RETURNING id',
      [contact, change.status ?? null, id],
    );
    if (rows.length === 0) throw new StoreError('notFound', `no ACME account ${id}`);
  }

  /**
   * Replaces the account's key (RFC 8555 §7.3.5). `conflict` when another account of the same
   * provisioner holds the new key, `notFound` when there is no such account.
   */
  async changeAccountKey(id: string, jwk: string, thumbprint: string): Promise<void> {
    let rows: unknown[];
    try {
      rows = await this.ctx.query('UPDATE acme_accounts SET jwk = $1, thumbprint = $2 WHERE id = $3 RETURNING id', [
        jwk,
        thumbprint,
        id,
      ]);
    } catch (err) {
      if (isUniqueViolation(err))
        throw new StoreError('conflict', 'another account of this provisioner already uses this key', { cause: err });
      throw err;
    }
    if (rows.length === 0) throw new StoreError('notFound', `no ACME account ${id}`);
  }

  // ── external account binding keys ────────────────────────────────────────────────────────────

  /** Stores a new, unbound EAB key. `conflict` if the kid is taken, `notFound` for an unknown provisioner. */
  async createEabKey(r: Omit<AcmeEabKeyRecord, 'accountId' | 'boundAt'>): Promise<void> {
    try {
      await this.ctx.query(
        `INSERT INTO acme_eab_keys (kid, provisioner, sealed_key, account_id, created_at, bound_at)
         VALUES ($1, $2, $3, NULL, $4, NULL)`,
        [r.kid, r.provisioner, r.sealedKey, r.createdAt],
      );
    } catch (err) {
      if (isUniqueViolation(err))
        throw new StoreError('conflict', `an EAB key with kid ${r.kid} already exists`, { cause: err });
      if (isForeignKeyViolation(err))
        throw new StoreError('notFound', `no provisioner ${r.provisioner}`, { cause: err });
      throw err;
    }
  }

  /** The EAB key with this kid, bound or not, or null. */
  async getEabKey(kid: string): Promise<AcmeEabKeyRecord | null> {
    const rows = await this.ctx.query<EabKeyRow>(`SELECT ${EAB_KEY_COLUMNS} FROM acme_eab_keys WHERE kid = $1`, [kid]);
    return rows[0] === undefined ? null : toEabKey(rows[0]);
  }

  /** A provisioner's EAB keys, oldest first. */
  async listEabKeys(provisioner: string): Promise<AcmeEabKeyRecord[]> {
    const rows = await this.ctx.query<EabKeyRow>(
      `SELECT ${EAB_KEY_COLUMNS} FROM acme_eab_keys WHERE provisioner = $1 ORDER BY created_at, kid COLLATE "C"`,
      [provisioner],
    );
    return rows.map(toEabKey);
  }

  // ── orders ───────────────────────────────────────────────────────────────────────────────────

  /**
   * Creates an order, its new authorizations and their challenges, and links it to all of
   * `o.authorizationIds` in that order, in one transaction. Ids not among `newAuthorizations` are
   * reused authorizations, which must exist and belong to the order's account (`notFound`). When
   * `o.replacesSerial` is set and an order that is not `invalid` already replaces that
   * certificate, throws `conflict` (RFC 9773 §5) and writes nothing; between two instances
   * creating such orders at once, the unique index acme_orders_replaces decides.
   */
  async createOrder(o: AcmeOrderRecord, newAuthorizations: AcmeAuthorizationRecord[]): Promise<void> {
    await this.ctx.transaction(async (tx) => {
      if (o.replacesSerial !== null) {
        const { rows } = await tx.query<{ id: string }>(
          "SELECT id FROM acme_orders WHERE replaces_serial = $1 AND status <> 'invalid' LIMIT 1",
          [o.replacesSerial],
        );
        if (rows[0] !== undefined)
          throw new StoreError(
            'conflict',
            `certificate ${o.replacesSerial} was already replaced by order ${rows[0].id}`,
          );
      }
      try {
        await tx.query(
          `INSERT INTO acme_orders (id, account_id, status, identifiers, not_before, not_after, expires, error, certificate_serial, replaces, replaces_serial, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
          [
            o.id,
            o.accountId,
            o.status,
            JSON.stringify(o.identifiers),
            o.notBefore,
            o.notAfter,
            o.expires,
            problemText(o.error),
            o.certificateSerial,
            o.replaces,
            o.replacesSerial,
            o.createdAt,
          ],
        );
      } catch (err) {
        if (isUniqueViolation(err, REPLACES_INDEX))
          throw new StoreError('conflict', `certificate ${o.replacesSerial} was already replaced by another order`, {
            cause: err,
          });
        if (isUniqueViolation(err)) throw new StoreError('conflict', `order ${o.id} already exists`, { cause: err });
        if (isForeignKeyViolation(err))
          throw new StoreError('notFound', `no ACME account ${o.accountId}`, { cause: err });
        throw err;
      }
      for (const authz of newAuthorizations) await insertAuthorization(tx, authz);
      for (const [position, authzId] of o.authorizationIds.entries()) {
        const linked = await tx.query(
          `INSERT INTO acme_order_authorizations (order_id, position, authorization_id)
           SELECT $1, $2, id FROM acme_authorizations WHERE id = $3 AND account_id = $4`,
          [o.id, position, authzId, o.accountId],
        );
        if (linked.rowCount === 0)
          throw new StoreError('notFound', `no authorization ${authzId} of account ${o.accountId}`);
      }
    });
  }

  /** The order with this id and its authorization ids, or null. */
  async getOrder(id: string): Promise<AcmeOrderRecord | null> {
    const rows = await this.ctx.query<OrderRow>(`${SELECT_ORDER} WHERE o.id = $1`, [id]);
    return rows[0] === undefined ? null : toOrder(rows[0]);
  }

  /** An account's orders, newest first (equal `createdAt`: the later inserted first), at most `limit`. */
  async listOrders(accountId: string, limit: number): Promise<AcmeOrderRecord[]> {
    if (!Number.isSafeInteger(limit) || limit < 0)
      throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
    const rows = await this.ctx.query<OrderRow>(
      `${SELECT_ORDER} WHERE o.account_id = $1 ORDER BY o.created_at DESC, o.seq DESC LIMIT $2`,
      [accountId, limit],
    );
    return rows.map(toOrder);
  }

  /**
   * Moves an order from `from` to `to.status`, setting `error` and `certificateSerial` when given
   * (others keep their value). A compare-and-set: returns false, writing nothing, when the order is
   * not in `from` (or does not exist). A certificate serial another order already has is `conflict`.
   */
  async transitionOrder(
    id: string,
    from: AcmeOrderStatus,
    to: { status: AcmeOrderStatus; error?: AcmeProblemRecord; certificateSerial?: string },
  ): Promise<boolean> {
    try {
      const rows = await this.ctx.query(
        `UPDATE acme_orders SET status = $1, error = COALESCE($2, error), certificate_serial = COALESCE($3, certificate_serial)
         WHERE id = $4 AND status = $5 RETURNING id`,
        [to.status, problemText(to.error), to.certificateSerial ?? null, id, from],
      );
      return rows.length > 0;
    } catch (err) {
      // The serial is another order's, or (leaving `invalid`) another order now replaces the same certificate.
      if (isUniqueViolation(err))
        throw new StoreError(
          'conflict',
          `order ${id} cannot become ${to.status}: certificate ${to.certificateSerial ?? '(unchanged)'} or the certificate it replaces belongs to another order`,
          { cause: err },
        );
      throw err;
    }
  }

  /** The order whose certificate has this serial, or null if it did not come through ACME. */
  async getOrderByCertificate(serial: string): Promise<AcmeOrderRecord | null> {
    const rows = await this.ctx.query<OrderRow>(`${SELECT_ORDER} WHERE o.certificate_serial = $1`, [serial]);
    return rows[0] === undefined ? null : toOrder(rows[0]);
  }

  /** The order that is not `invalid` and replaces this serial (RFC 9773 §5), if any. */
  async getOrderReplacing(serial: string): Promise<AcmeOrderRecord | null> {
    const rows = await this.ctx.query<OrderRow>(
      `${SELECT_ORDER} WHERE o.replaces_serial = $1 AND o.status <> 'invalid' LIMIT 1`,
      [serial],
    );
    return rows[0] === undefined ? null : toOrder(rows[0]);
  }

  /** How many orders the account created after `since` (for rate limits). */
  async countOrdersSince(accountId: string, since: Date): Promise<number> {
    return count(this.ctx, 'SELECT COUNT(*)::int AS n FROM acme_orders WHERE account_id = $1 AND created_at > $2', [
      accountId,
      since,
    ]);
  }

  // ── authorizations ───────────────────────────────────────────────────────────────────────────

  /** The authorization with this id and its challenges in the order they were created, or null. */
  async getAuthorization(id: string): Promise<AcmeAuthorizationRecord | null> {
    return this.authorizationWhere('a.id = $1', [id]);
  }

  /**
   * A valid authorization of this account for this identifier that expires after `now`, to reuse
   * in a new order; of several, the one that stays valid longest (the newest validated).
   */
  async findValidAuthorization(
    accountId: string,
    identifier: AcmeIdentifierRecord,
    wildcard: boolean,
    now: Date,
  ): Promise<AcmeAuthorizationRecord | null> {
    return this.authorizationWhere(
      `a.id = (SELECT id FROM acme_authorizations
         WHERE account_id = $1 AND identifier_type = $2 AND identifier_value = $3 AND wildcard = $4
           AND status = 'valid' AND expires > $5
         ORDER BY expires DESC, created_at DESC LIMIT 1)`,
      [accountId, identifier.type, identifier.value, wildcard, now],
    );
  }

  /**
   * The one authorization `condition` picks, with its challenges, read in one statement: a
   * validation another instance finishes meanwhile shows in both or in neither.
   */
  private async authorizationWhere(condition: string, params: unknown[]): Promise<AcmeAuthorizationRecord | null> {
    const rows = await this.ctx.query<AuthorizationRow & PrefixedChallengeRow>(
      `SELECT ${AUTHORIZATION_WITH_CHALLENGE_COLUMNS}
       FROM acme_authorizations a LEFT JOIN acme_challenges c ON c.authorization_id = a.id
       WHERE ${condition} ORDER BY c.seq`,
      params,
    );
    const first = rows[0];
    if (first === undefined) return null;
    const challenges = rows.flatMap((row) =>
      row.c_id === null
        ? []
        : [
            toChallenge({
              id: row.c_id,
              authorization_id: row.id,
              type: row.c_type,
              token: row.c_token,
              status: row.c_status,
              validated: row.c_validated,
              error: row.c_error,
            }),
          ],
    );
    return toAuthorization(first, challenges);
  }

  /** Sets an authorization's status (deactivation, revocation); `notFound` if there is none. */
  async setAuthorizationStatus(id: string, status: AcmeAuthorizationStatus): Promise<void> {
    const rows = await this.ctx.query('UPDATE acme_authorizations SET status = $1 WHERE id = $2 RETURNING id', [
      status,
      id,
    ]);
    if (rows.length === 0) throw new StoreError('notFound', `no authorization ${id}`);
  }

  // ── challenges ───────────────────────────────────────────────────────────────────────────────

  /** The challenge with this id, or null. */
  async getChallenge(id: string): Promise<AcmeChallengeRecord | null> {
    const rows = await this.ctx.query<ChallengeRow>(`SELECT ${CHALLENGE_COLUMNS} FROM acme_challenges WHERE id = $1`, [
      id,
    ]);
    return rows[0] === undefined ? null : toChallenge(rows[0]);
  }

  /** pending → processing, as a compare-and-set: false if it was not pending, so only one validation runs. */
  async startChallenge(id: string): Promise<boolean> {
    const rows = await this.ctx.query(
      "UPDATE acme_challenges SET status = 'processing' WHERE id = $1 AND status = 'pending' RETURNING id",
      [id],
    );
    return rows.length > 0;
  }

  /**
   * Records a validation outcome in one transaction: the challenge becomes valid, or invalid with
   * its problem (`validated` is the attempt's time either way), and its authorization, if still
   * pending, becomes valid with the new expiry or invalid (RFC 8555 §7.1.6). An authorization
   * deactivated meanwhile stays so. `notFound` for an unknown challenge; `conflict` for one
   * already settled (the challenge row is locked first, so of two instances finishing it at once
   * the second sees the first's outcome).
   */
  async finishChallenge(id: string, outcome: AcmeValidationOutcome): Promise<void> {
    await this.ctx.transaction(async (tx) => {
      const { rows } = await tx.query<{ authorization_id: string; status: AcmeChallengeStatus }>(
        'SELECT authorization_id, status FROM acme_challenges WHERE id = $1 FOR UPDATE',
        [id],
      );
      const challenge = rows[0];
      if (challenge === undefined) throw new StoreError('notFound', `no challenge ${id}`);
      if (challenge.status === 'valid' || challenge.status === 'invalid')
        throw new StoreError('conflict', `challenge ${id} is already ${challenge.status}`);
      if (outcome.valid) {
        await tx.query("UPDATE acme_challenges SET status = 'valid', validated = $1, error = NULL WHERE id = $2", [
          outcome.at,
          id,
        ]);
        await tx.query(
          "UPDATE acme_authorizations SET status = 'valid', expires = $1 WHERE id = $2 AND status = 'pending'",
          [outcome.authorizationExpires, challenge.authorization_id],
        );
      } else {
        await tx.query("UPDATE acme_challenges SET status = 'invalid', validated = $1, error = $2 WHERE id = $3", [
          outcome.at,
          problemText(outcome.error),
          id,
        ]);
        await tx.query("UPDATE acme_authorizations SET status = 'invalid' WHERE id = $1 AND status = 'pending'", [
          challenge.authorization_id,
        ]);
      }
    });
  }

  /** How many validations of this account's challenges failed after `since` (for rate limits). */
  async countFailedValidationsSince(accountId: string, since: Date): Promise<number> {
    return count(
      this.ctx,
      "SELECT COUNT(*)::int AS n FROM acme_challenges WHERE account_id = $1 AND status = 'invalid' AND validated > $2",
      [accountId, since],
    );
  }

  // ── nonces ───────────────────────────────────────────────────────────────────────────────────

  /**
   * Records a nonce as spent; true the first time any instance spends it. Of two racing, the
   * second INSERT waits on the first's uncommitted key and then does nothing, so exactly one wins.
   */
  async spendNonce(nonce: string, expiresAt: Date): Promise<boolean> {
    const rows = await this.ctx.query(
      'INSERT INTO acme_spent_nonces (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING RETURNING nonce',
      [nonce, expiresAt],
    );
    return rows.length === 1;
  }

  /** Drops spent nonces whose lifetime ended before `now`; returns how many. */
  async pruneSpentNonces(now: Date): Promise<number> {
    const rows = await this.ctx.query('DELETE FROM acme_spent_nonces WHERE expires_at < $1 RETURNING nonce', [now]);
    return rows.length;
  }
}

/** An authorization with its challenges and their challenges, as `createOrder` writes them. */
async function insertAuthorization(tx: PoolClient, a: AcmeAuthorizationRecord): Promise<void> {
  try {
    await tx.query(
      `INSERT INTO acme_authorizations (id, account_id, identifier_type, identifier_value, wildcard, status, expires, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [a.id, a.accountId, a.identifier.type, a.identifier.value, a.wildcard, a.status, a.expires, a.createdAt],
    );
    // A challenge belongs to the authorization it is listed in; insertion order (seq) is read order.
    for (const c of a.challenges)
      await tx.query(
        `INSERT INTO acme_challenges (id, authorization_id, account_id, type, token, status, validated, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [c.id, a.id, a.accountId, c.type, c.token, c.status, c.validated, problemText(c.error)],
      );
  } catch (err) {
    if (isUniqueViolation(err))
      throw new StoreError('conflict', `authorization ${a.id} or one of its challenges already exists`, {
        cause: err,
      });
    if (isForeignKeyViolation(err)) throw new StoreError('notFound', `no ACME account ${a.accountId}`, { cause: err });
    throw err;
  }
}

async function count(ctx: PgContext, sql: string, params: unknown[]): Promise<number> {
  const rows = await ctx.query<{ n: number }>(sql, params);
  return rows[0]?.n ?? 0;
}
