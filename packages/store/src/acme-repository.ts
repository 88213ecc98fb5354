import type Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import type { AcmeEngine } from './contracts/store.js';
import type { RepositoryContext } from './sqlite-context.js';
import { fromText, toText } from './rows.js';
import { isForeignKeyViolation, isUniqueViolation } from './sqlite-errors.js';
import type {
  AcmeAccountStatus,
  AcmeOrderStatus,
  AcmeAuthorizationStatus,
  AcmeChallengeStatus,
  AcmeChallengeType,
  AcmeIdentifierRecord,
  AcmeProblemRecord,
  AcmeAccountRecord,
  AcmeEabKeyRecord,
  AcmeOrderRecord,
  AcmeChallengeRecord,
  AcmeAuthorizationRecord,
  AcmeValidationOutcome,
} from './contracts/acme.js';

export type {
  AcmeAccountStatus,
  AcmeOrderStatus,
  AcmeAuthorizationStatus,
  AcmeChallengeStatus,
  AcmeChallengeType,
  AcmeIdentifierRecord,
  AcmeProblemRecord,
  AcmeAccountRecord,
  AcmeEabKeyRecord,
  AcmeOrderRecord,
  AcmeChallengeRecord,
  AcmeAuthorizationRecord,
  AcmeValidationOutcome,
} from './contracts/acme.js';
import { fromProblemText, problemText } from './engine-rules.js';

interface AccountRow {
  id: string;
  provisioner: string;
  thumbprint: string;
  jwk: string;
  status: AcmeAccountStatus;
  contact: string;
  eab_kid: string | null;
  created_at: string;
}
interface EabKeyRow {
  kid: string;
  provisioner: string;
  sealed_key: Buffer;
  account_id: string | null;
  created_at: string;
  bound_at: string | null;
}
interface OrderRow {
  id: string;
  account_id: string;
  status: AcmeOrderStatus;
  identifiers: string;
  not_before: string | null;
  not_after: string | null;
  expires: string;
  error: string | null;
  certificate_serial: string | null;
  replaces: string | null;
  replaces_serial: string | null;
  created_at: string;
}
interface AuthorizationRow {
  id: string;
  account_id: string;
  identifier_type: 'dns' | 'ip';
  identifier_value: string;
  wildcard: number;
  status: AcmeAuthorizationStatus;
  expires: string;
  created_at: string;
}
interface ChallengeRow {
  id: string;
  authorization_id: string;
  type: AcmeChallengeType;
  token: string;
  status: AcmeChallengeStatus;
  validated: string | null;
  error: string | null;
}

const nullableText = (date: Date | null): string | null => (date === null ? null : toText(date));
const fromNullableText = (text: string | null): Date | null => (text === null ? null : fromText(text));

const toAccount = (r: AccountRow): AcmeAccountRecord => ({
  id: r.id,
  provisioner: r.provisioner,
  thumbprint: r.thumbprint,
  jwk: r.jwk,
  status: r.status,
  contact: JSON.parse(r.contact) as string[],
  eabKid: r.eab_kid,
  createdAt: fromText(r.created_at),
});
const toEabKey = (r: EabKeyRow): AcmeEabKeyRecord => ({
  kid: r.kid,
  provisioner: r.provisioner,
  sealedKey: r.sealed_key,
  accountId: r.account_id,
  createdAt: fromText(r.created_at),
  boundAt: fromNullableText(r.bound_at),
});
const toOrder = (r: OrderRow, authorizationIds: string[]): AcmeOrderRecord => ({
  id: r.id,
  accountId: r.account_id,
  status: r.status,
  identifiers: JSON.parse(r.identifiers) as AcmeIdentifierRecord[],
  authorizationIds,
  notBefore: fromNullableText(r.not_before),
  notAfter: fromNullableText(r.not_after),
  expires: fromText(r.expires),
  error: fromProblemText(r.error),
  certificateSerial: r.certificate_serial,
  replaces: r.replaces,
  replacesSerial: r.replaces_serial,
  createdAt: fromText(r.created_at),
});
const toChallenge = (r: ChallengeRow): AcmeChallengeRecord => ({
  id: r.id,
  authorizationId: r.authorization_id,
  type: r.type,
  token: r.token,
  status: r.status,
  validated: fromNullableText(r.validated),
  error: fromProblemText(r.error),
});
const toAuthorization = (r: AuthorizationRow, challenges: AcmeChallengeRecord[]): AcmeAuthorizationRecord => ({
  id: r.id,
  accountId: r.account_id,
  identifier: { type: r.identifier_type, value: r.identifier_value },
  wildcard: r.wildcard === 1,
  status: r.status,
  expires: fromText(r.expires),
  challenges,
  createdAt: fromText(r.created_at),
});

/**
 * ACME state on the store's SQLite connection: accounts and the EAB keys that bind them, orders
 * with their authorizations (shared between orders of an account when reused) and challenges.
 * Every method is one transaction. A row that already exists is `conflict`, a missing one
 * `notFound`, an EAB key used a second time `eabKeyUsed`; the compare-and-set methods
 * (`transitionOrder`, `startChallenge`) return false instead of throwing when they lose.
 */
export class AcmeRepository implements AcmeEngine {
  private readonly createAccountTransaction: Database.Transaction<
    (a: AcmeAccountRecord, eab?: { kid: string; at: Date }) => void
  >;
  private readonly createOrderTransaction: Database.Transaction<
    (o: AcmeOrderRecord, newAuthorizations: AcmeAuthorizationRecord[]) => void
  >;
  private readonly finishChallengeTransaction: Database.Transaction<
    (id: string, outcome: AcmeValidationOutcome) => void
  >;

  constructor(private readonly ctx: RepositoryContext) {
    this.createAccountTransaction = ctx.db.transaction((a: AcmeAccountRecord, eab?: { kid: string; at: Date }) =>
      this.createAccountInTransaction(a, eab),
    );
    this.createOrderTransaction = ctx.db.transaction(
      (o: AcmeOrderRecord, newAuthorizations: AcmeAuthorizationRecord[]) =>
        this.createOrderInTransaction(o, newAuthorizations),
    );
    this.finishChallengeTransaction = ctx.db.transaction((id: string, outcome: AcmeValidationOutcome) =>
      this.finishChallengeInTransaction(id, outcome),
    );
  }

  // ── accounts ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Creates an account. With `eab`, binds that external account key to it in the same
   * transaction (RFC 8555 §7.3.4): a key that does not exist for this provisioner is `notFound`, one
   * already bound is `eabKeyUsed`, and either writes nothing. `a.eabKid` must name the same key
   * (or be null without `eab`). A key already registered with the provisioner is `conflict`.
   */
  async createAccount(a: AcmeAccountRecord, eab?: { kid: string; at: Date }): Promise<void> {
    if (a.eabKid !== (eab?.kid ?? null))
      throw new RangeError(
        `account eabKid ${String(a.eabKid)} does not match the EAB key being bound (${String(eab?.kid ?? null)})`,
      );
    this.ctx.guard(() => this.createAccountTransaction.immediate(a, eab));
  }

  private createAccountInTransaction(a: AcmeAccountRecord, eab?: { kid: string; at: Date }): void {
    if (eab !== undefined) {
      const key = this.ctx.stmt('SELECT provisioner, account_id FROM acme_eab_keys WHERE kid = ?').get(eab.kid) as
        { provisioner: string; account_id: string | null } | undefined;
      if (key === undefined || key.provisioner !== a.provisioner)
        throw new StoreError('notFound', `no EAB key ${eab.kid} for provisioner ${a.provisioner}`);
      if (key.account_id !== null)
        throw new StoreError('eabKeyUsed', `EAB key ${eab.kid} is already bound to an account`);
    }
    try {
      this.ctx
        .stmt(
          'INSERT INTO acme_accounts (id, provisioner, thumbprint, jwk, status, contact, eab_kid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(
          a.id,
          a.provisioner,
          a.thumbprint,
          a.jwk,
          a.status,
          JSON.stringify(a.contact),
          a.eabKid,
          toText(a.createdAt),
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
    const bound = this.ctx
      .stmt('UPDATE acme_eab_keys SET account_id = ?, bound_at = ? WHERE kid = ? AND account_id IS NULL')
      .run(a.id, toText(eab.at), eab.kid);
    if (bound.changes === 0) throw new StoreError('eabKeyUsed', `EAB key ${eab.kid} is already bound to an account`);
  }

  /** The account with this id, or null. */
  async getAccount(id: string): Promise<AcmeAccountRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM acme_accounts WHERE id = ?').get(id) as AccountRow | undefined;
      return row === undefined ? null : toAccount(row);
    });
  }

  /** The account of this provisioner whose key has this RFC 7638 thumbprint, or null. */
  async getAccountByThumbprint(provisioner: string, thumbprint: string): Promise<AcmeAccountRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx
        .stmt('SELECT * FROM acme_accounts WHERE provisioner = ? AND thumbprint = ?')
        .get(provisioner, thumbprint) as AccountRow | undefined;
      return row === undefined ? null : toAccount(row);
    });
  }

  /** Changes the given fields only; `notFound` if there is no such account. */
  async updateAccount(id: string, change: { contact?: string[]; status?: AcmeAccountStatus }): Promise<void> {
    this.ctx.guard(() => {
      const contact = change.contact === undefined ? null : JSON.stringify(change.contact);
      const result = this.ctx
        .stmt('UPDATE acme_accounts SET contact = COALESCE(?, contact), status = COALESCE(?, status) WHERE id = ?')
        .run(contact, change.status ?? null, id);
      if (result.changes === 0) throw new StoreError('notFound', `no ACME account ${id}`);
    });
  }

  /**
   * Replaces the account's key (RFC 8555 §7.3.5). `conflict` when another account of the same
   * provisioner holds the new key, `notFound` when there is no such account.
   */
  async changeAccountKey(id: string, jwk: string, thumbprint: string): Promise<void> {
    this.ctx.guard(() => {
      let changes: number;
      try {
        changes = this.ctx
          .stmt('UPDATE acme_accounts SET jwk = ?, thumbprint = ? WHERE id = ?')
          .run(jwk, thumbprint, id).changes;
      } catch (err) {
        if (isUniqueViolation(err))
          throw new StoreError('conflict', 'another account of this provisioner already uses this key', { cause: err });
        throw err;
      }
      if (changes === 0) throw new StoreError('notFound', `no ACME account ${id}`);
    });
  }

  // ── external account binding keys ────────────────────────────────────────────────────────────

  /** Stores a new, unbound EAB key. `conflict` if the kid is taken, `notFound` for an unknown provisioner. */
  async createEabKey(r: Omit<AcmeEabKeyRecord, 'accountId' | 'boundAt'>): Promise<void> {
    this.ctx.guard(() => {
      try {
        this.ctx
          .stmt(
            'INSERT INTO acme_eab_keys (kid, provisioner, sealed_key, account_id, created_at, bound_at) VALUES (?, ?, ?, NULL, ?, NULL)',
          )
          .run(r.kid, r.provisioner, r.sealedKey, toText(r.createdAt));
      } catch (err) {
        if (isUniqueViolation(err))
          throw new StoreError('conflict', `an EAB key with kid ${r.kid} already exists`, { cause: err });
        if (isForeignKeyViolation(err))
          throw new StoreError('notFound', `no provisioner ${r.provisioner}`, { cause: err });
        throw err;
      }
    });
  }

  /** The EAB key with this kid, bound or not, or null. */
  async getEabKey(kid: string): Promise<AcmeEabKeyRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM acme_eab_keys WHERE kid = ?').get(kid) as EabKeyRow | undefined;
      return row === undefined ? null : toEabKey(row);
    });
  }

  /** A provisioner's EAB keys, oldest first. */
  async listEabKeys(provisioner: string): Promise<AcmeEabKeyRecord[]> {
    return this.ctx.guard(() =>
      (
        this.ctx
          .stmt('SELECT * FROM acme_eab_keys WHERE provisioner = ? ORDER BY created_at, kid')
          .all(provisioner) as EabKeyRow[]
      ).map(toEabKey),
    );
  }

  // ── orders ───────────────────────────────────────────────────────────────────────────────────

  /**
   * Creates an order, its new authorizations and their challenges, and links it to all of
   * `o.authorizationIds` in that order, in one transaction. Ids not among `newAuthorizations` are
   * reused authorizations, which must exist and belong to the order's account (`notFound`). When
   * `o.replacesSerial` is set and an order that is not `invalid` already replaces that
   * certificate, throws `conflict` (RFC 9773 §5) and writes nothing.
   */
  async createOrder(o: AcmeOrderRecord, newAuthorizations: AcmeAuthorizationRecord[]): Promise<void> {
    this.ctx.guard(() => this.createOrderTransaction.immediate(o, newAuthorizations));
  }

  private createOrderInTransaction(o: AcmeOrderRecord, newAuthorizations: AcmeAuthorizationRecord[]): void {
    if (o.replacesSerial !== null) {
      const other = this.ctx
        .stmt("SELECT id FROM acme_orders WHERE replaces_serial = ? AND status != 'invalid' LIMIT 1")
        .pluck()
        .get(o.replacesSerial) as string | undefined;
      if (other !== undefined)
        throw new StoreError('conflict', `certificate ${o.replacesSerial} was already replaced by order ${other}`);
    }
    try {
      this.ctx
        .stmt(
          `INSERT INTO acme_orders (id, account_id, status, identifiers, not_before, not_after, expires, error, certificate_serial, replaces, replaces_serial, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          o.id,
          o.accountId,
          o.status,
          JSON.stringify(o.identifiers),
          nullableText(o.notBefore),
          nullableText(o.notAfter),
          toText(o.expires),
          problemText(o.error),
          o.certificateSerial,
          o.replaces,
          o.replacesSerial,
          toText(o.createdAt),
        );
    } catch (err) {
      if (isUniqueViolation(err)) throw new StoreError('conflict', `order ${o.id} already exists`, { cause: err });
      if (isForeignKeyViolation(err))
        throw new StoreError('notFound', `no ACME account ${o.accountId}`, { cause: err });
      throw err;
    }
    for (const authz of newAuthorizations) this.insertAuthorization(authz);
    const link = this.ctx.stmt(
      'INSERT INTO acme_order_authorizations (order_id, position, authorization_id) SELECT ?, ?, id FROM acme_authorizations WHERE id = ? AND account_id = ?',
    );
    o.authorizationIds.forEach((authzId, position) => {
      if (link.run(o.id, position, authzId, o.accountId).changes === 0)
        throw new StoreError('notFound', `no authorization ${authzId} of account ${o.accountId}`);
    });
  }

  private insertAuthorization(a: AcmeAuthorizationRecord): void {
    try {
      this.ctx
        .stmt(
          'INSERT INTO acme_authorizations (id, account_id, identifier_type, identifier_value, wildcard, status, expires, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(
          a.id,
          a.accountId,
          a.identifier.type,
          a.identifier.value,
          a.wildcard ? 1 : 0,
          a.status,
          toText(a.expires),
          toText(a.createdAt),
        );
      // A challenge belongs to the authorization it is listed in; insertion order is read order.
      const insertChallenge = this.ctx.stmt(
        'INSERT INTO acme_challenges (id, authorization_id, account_id, type, token, status, validated, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      );
      for (const c of a.challenges)
        insertChallenge.run(
          c.id,
          a.id,
          a.accountId,
          c.type,
          c.token,
          c.status,
          nullableText(c.validated),
          problemText(c.error),
        );
    } catch (err) {
      if (isUniqueViolation(err))
        throw new StoreError('conflict', `authorization ${a.id} or one of its challenges already exists`, {
          cause: err,
        });
      if (isForeignKeyViolation(err))
        throw new StoreError('notFound', `no ACME account ${a.accountId}`, { cause: err });
      throw err;
    }
  }

  private authorizationIdsOf(orderId: string): string[] {
    return this.ctx
      .stmt('SELECT authorization_id FROM acme_order_authorizations WHERE order_id = ? ORDER BY position')
      .pluck()
      .all(orderId) as string[];
  }

  /** The order with this id and its authorization ids, or null. */
  async getOrder(id: string): Promise<AcmeOrderRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM acme_orders WHERE id = ?').get(id) as OrderRow | undefined;
      return row === undefined ? null : toOrder(row, this.authorizationIdsOf(row.id));
    });
  }

  /** An account's orders, newest first, at most `limit` of them. */
  async listOrders(accountId: string, limit: number): Promise<AcmeOrderRecord[]> {
    if (!Number.isSafeInteger(limit) || limit < 0)
      throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
    return this.ctx.guard(() => {
      const rows = this.ctx
        .stmt('SELECT * FROM acme_orders WHERE account_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?')
        .all(accountId, limit) as OrderRow[];
      return rows.map((row) => toOrder(row, this.authorizationIdsOf(row.id)));
    });
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
    return this.ctx.guard(() => {
      try {
        const result = this.ctx
          .stmt(
            'UPDATE acme_orders SET status = ?, error = COALESCE(?, error), certificate_serial = COALESCE(?, certificate_serial) WHERE id = ? AND status = ?',
          )
          .run(to.status, problemText(to.error), to.certificateSerial ?? null, id, from);
        return result.changes > 0;
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
    });
  }

  /** The order whose certificate has this serial, or null if it did not come through ACME. */
  async getOrderByCertificate(serial: string): Promise<AcmeOrderRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM acme_orders WHERE certificate_serial = ?').get(serial) as
        OrderRow | undefined;
      return row === undefined ? null : toOrder(row, this.authorizationIdsOf(row.id));
    });
  }

  /** The order that is not `invalid` and replaces this serial (RFC 9773 §5), if any. */
  async getOrderReplacing(serial: string): Promise<AcmeOrderRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx
        .stmt("SELECT * FROM acme_orders WHERE replaces_serial = ? AND status != 'invalid' LIMIT 1")
        .get(serial) as OrderRow | undefined;
      return row === undefined ? null : toOrder(row, this.authorizationIdsOf(row.id));
    });
  }

  /** How many orders the account created after `since` (for rate limits). */
  async countOrdersSince(accountId: string, since: Date): Promise<number> {
    return this.ctx.guard(
      () =>
        this.ctx
          .stmt('SELECT COUNT(*) FROM acme_orders WHERE account_id = ? AND created_at > ?')
          .pluck()
          .get(accountId, toText(since)) as number,
    );
  }

  // ── authorizations ───────────────────────────────────────────────────────────────────────────

  private challengesOf(authorizationId: string): AcmeChallengeRecord[] {
    return (
      this.ctx
        .stmt('SELECT * FROM acme_challenges WHERE authorization_id = ? ORDER BY rowid')
        .all(authorizationId) as ChallengeRow[]
    ).map(toChallenge);
  }

  /** The authorization with this id and its challenges, or null. */
  async getAuthorization(id: string): Promise<AcmeAuthorizationRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM acme_authorizations WHERE id = ?').get(id) as
        AuthorizationRow | undefined;
      return row === undefined ? null : toAuthorization(row, this.challengesOf(row.id));
    });
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
    return this.ctx.guard(() => {
      const row = this.ctx
        .stmt(
          `SELECT * FROM acme_authorizations
           WHERE account_id = ? AND identifier_type = ? AND identifier_value = ? AND wildcard = ? AND status = 'valid' AND expires > ?
           ORDER BY expires DESC, created_at DESC LIMIT 1`,
        )
        .get(accountId, identifier.type, identifier.value, wildcard ? 1 : 0, toText(now)) as
        AuthorizationRow | undefined;
      return row === undefined ? null : toAuthorization(row, this.challengesOf(row.id));
    });
  }

  /** Sets an authorization's status (deactivation, revocation); `notFound` if there is none. */
  async setAuthorizationStatus(id: string, status: AcmeAuthorizationStatus): Promise<void> {
    this.ctx.guard(() => {
      if (this.ctx.stmt('UPDATE acme_authorizations SET status = ? WHERE id = ?').run(status, id).changes === 0)
        throw new StoreError('notFound', `no authorization ${id}`);
    });
  }

  // ── challenges ───────────────────────────────────────────────────────────────────────────────

  /** The challenge with this id, or null. */
  async getChallenge(id: string): Promise<AcmeChallengeRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM acme_challenges WHERE id = ?').get(id) as ChallengeRow | undefined;
      return row === undefined ? null : toChallenge(row);
    });
  }

  /** pending → processing, as a compare-and-set: false if it was not pending, so only one validation runs. */
  async startChallenge(id: string): Promise<boolean> {
    return this.ctx.guard(
      () =>
        this.ctx.stmt("UPDATE acme_challenges SET status = 'processing' WHERE id = ? AND status = 'pending'").run(id)
          .changes > 0,
    );
  }

  /**
   * Records a validation outcome in one transaction: the challenge becomes valid, or invalid with
   * its problem (`validated` is the attempt's time either way), and its authorization, if still
   * pending, becomes valid with the new expiry or invalid (RFC 8555 §7.1.6). An authorization
   * deactivated meanwhile stays so. `notFound` for an unknown challenge; `conflict` for one
   * already settled.
   */
  async finishChallenge(id: string, outcome: AcmeValidationOutcome): Promise<void> {
    this.ctx.guard(() => this.finishChallengeTransaction.immediate(id, outcome));
  }

  private finishChallengeInTransaction(id: string, outcome: AcmeValidationOutcome): void {
    const challenge = this.ctx.stmt('SELECT authorization_id, status FROM acme_challenges WHERE id = ?').get(id) as
      { authorization_id: string; status: AcmeChallengeStatus } | undefined;
    if (challenge === undefined) throw new StoreError('notFound', `no challenge ${id}`);
    if (challenge.status === 'valid' || challenge.status === 'invalid')
      throw new StoreError('conflict', `challenge ${id} is already ${challenge.status}`);
    const at = toText(outcome.at);
    if (outcome.valid) {
      this.ctx
        .stmt("UPDATE acme_challenges SET status = 'valid', validated = ?, error = NULL WHERE id = ?")
        .run(at, id);
      this.ctx
        .stmt("UPDATE acme_authorizations SET status = 'valid', expires = ? WHERE id = ? AND status = 'pending'")
        .run(toText(outcome.authorizationExpires), challenge.authorization_id);
    } else {
      this.ctx
        .stmt("UPDATE acme_challenges SET status = 'invalid', validated = ?, error = ? WHERE id = ?")
        .run(at, problemText(outcome.error), id);
      this.ctx
        .stmt("UPDATE acme_authorizations SET status = 'invalid' WHERE id = ? AND status = 'pending'")
        .run(challenge.authorization_id);
    }
  }

  /** How many validations of this account's challenges failed after `since` (for rate limits). */
  async countFailedValidationsSince(accountId: string, since: Date): Promise<number> {
    return this.ctx.guard(
      () =>
        this.ctx
          .stmt("SELECT COUNT(*) FROM acme_challenges WHERE account_id = ? AND status = 'invalid' AND validated > ?")
          .pluck()
          .get(accountId, toText(since)) as number,
    );
  }

  /** Records a nonce as spent; true the first time. The row is kept until the nonce's own expiry. */
  async spendNonce(nonce: string, expiresAt: Date): Promise<boolean> {
    return this.ctx.guard(
      () =>
        this.ctx
          .stmt('INSERT INTO acme_spent_nonces (nonce, expires_at) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING')
          .run(nonce, toText(expiresAt)).changes === 1,
    );
  }

  /** Drops spent nonces whose lifetime ended before `now`. */
  async pruneSpentNonces(now: Date): Promise<number> {
    return this.ctx.guard(
      () => this.ctx.stmt('DELETE FROM acme_spent_nonces WHERE expires_at < ?').run(toText(now)).changes,
    );
  }
}
