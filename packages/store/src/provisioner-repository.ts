import { StoreError } from './errors.js';
import type { NewProvisioner, ProvisionerRecord } from './contracts/records.js';
import { toProvisionerRecord, toText } from './rows.js';
import type { ProvisionerRow } from './rows.js';
import type { RepositoryContext } from './sqlite-context.js';
import { isUniqueViolation } from './sqlite-errors.js';

/** Provisioners (the credential sources the authority trusts), on the store's SQLite connection. */
export class ProvisionerRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** Add a provisioner. `conflict` if one with this name exists: replacing credentials is a separate, deliberate act. */
  async addProvisioner(r: NewProvisioner): Promise<void> {
    this.ctx.guard(() => {
      try {
        this.ctx
          .stmt(
            'INSERT INTO provisioners (name, type, public_jwk, policy, options, created_at) VALUES (?, ?, ?, ?, ?, ?)',
          )
          .run(r.name, r.type, r.publicJwk, r.policy, r.options ?? '{}', toText(r.createdAt));
      } catch (err) {
        if (isUniqueViolation(err))
          throw new StoreError('conflict', `a provisioner named ${r.name} already exists`, { cause: err });
        throw err;
      }
    });
  }

  /** The provisioner with this name, or null. */
  async getProvisioner(name: string): Promise<ProvisionerRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM provisioners WHERE name = ?').get(name) as ProvisionerRow | undefined;
      return row === undefined ? null : toProvisionerRecord(row);
    });
  }

  /** All provisioners, by name. */
  async listProvisioners(): Promise<ProvisionerRecord[]> {
    return this.ctx.guard(() =>
      (this.ctx.stmt('SELECT * FROM provisioners ORDER BY name').all() as ProvisionerRow[]).map(toProvisionerRecord),
    );
  }
}
