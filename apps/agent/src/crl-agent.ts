import { decodePem } from '@shortleaf/pki';
import { createCrlSync } from './crl-sync.js';
import { runHook, type Hook } from './hooks.js';
import type { AgentLogger } from './log.js';

/**
 * Keeps a proxy's CRL file fresh: every `intervalMs`, fetch the CRLs (conditional GET), verify
 * them, write the bundle only when one changed, then run the hook. A failed fetch or a CRL that
 * does not verify leaves the file as it was and is logged; the next poll tries again.
 */
export function createCrlAgent(
  opts: { urls: string[]; rootPem: string; out: string; intervalMs: number; hook: Hook | null },
  deps: { logger: AgentLogger; now(): Date; sleep(ms: number): Promise<boolean> },
) {
  const caCertificates = decodePem(opts.rootPem)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
  if (caCertificates.length === 0) throw new Error('the --root file holds no certificates to verify CRLs with');
  const sync = createCrlSync({
    sources: opts.urls.map((url) => ({ url })),
    caCertificates,
    out: opts.out,
    now: deps.now,
  });

  /** One poll; true when the file changed. */
  async function pollOnce(): Promise<boolean> {
    const result = await sync.sync();
    if (!result.changed) return false;
    deps.logger.info('crl_written', {
      out: opts.out,
      crls: result.crls.map((c) => ({
        url: c.url,
        number: c.number.toString(),
        entries: c.entries,
        nextUpdate: c.nextUpdate.toISOString(),
      })),
    });
    if (opts.hook !== null) {
      const outcome = await runHook(opts.hook);
      (outcome.ok ? deps.logger.info : deps.logger.error)(outcome.ok ? 'hook_succeeded' : 'hook_failed', {
        hook: opts.hook.kind,
        detail: outcome.detail,
      });
    }
    return true;
  }

  return {
    pollOnce,
    async run(): Promise<void> {
      do {
        try {
          await pollOnce();
        } catch (err) {
          deps.logger.error('crl_refused', {
            error: (err as Error).message,
            code: (err as { code?: string }).code ?? null,
            kept: opts.out,
          });
        }
      } while (await deps.sleep(opts.intervalMs));
    },
  };
}
