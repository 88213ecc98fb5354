import { StoreError } from '../contracts/errors.js';
import type { NewProvisioner, ProvisionerRecord } from '../contracts/records.js';
import type { PgContext } from './pg-context.js';
import { isUniqueViolation } from './pg-errors.js';
import { toProvisionerRecord, type ProvisionerRow } from './pg-rows.js';

/** Provisioners (the credential sources the authority trusts), on PostgreSQL. */
export class PgProvisionerRepository {
  constructor(private readonly ctx: PgContext) {}

  /** Add a provisioner. `conflict` if one with this name exists: replacing credentials is a separate, deliberate act. */
  async addProvisioner(r: NewProvisioner): Promise<void> {
    try {
      await this.ctx.query(
        'INSERT INTO provisioners (name, type, public_jwk, policy, options, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
        [r.name, r.type, r.publicJwk, r.policy, r.options ?? '{}', r.createdAt],
      );
    } catch (err) {
      if (isUniqueViolation(err))
        throw new StoreError('conflict', `a provisioner named ${r.name} already exists`, { cause: err });
      throw err;
    }
  }

  /** The provisioner with this name, or null. */
  async getProvisioner(name: string): Promise<ProvisionerRecord | null> {
    const [row] = await this.ctx.query<ProvisionerRow>('SELECT * FROM provisioners WHERE name = $1', [name]);
    return row === undefined ? null : toProvisionerRecord(row);
  }

  /** All provisioners, by name (byte order, as SQLite sorts). */
  async listProvisioners(): Promise<ProvisionerRecord[]> {
    const rows = await this.ctx.query<ProvisionerRow>('SELECT * FROM provisioners ORDER BY name COLLATE "C"');
    return rows.map(toProvisionerRecord);
  }
}
