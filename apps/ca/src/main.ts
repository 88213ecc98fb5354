#!/usr/bin/env node
import { AuthorityError } from '@shortleaf/authority';
import { CaProblemError } from '@shortleaf/client';
import { PkiError } from '@shortleaf/pki';
import { StoreError } from '@shortleaf/store';
import { agentCommand } from '@shortleaf/agent';
import { Stopped, UsageError } from './cli.js';
import { debugStackTraces, invocationDirectory } from './config.js';
import { redactUrlsIn } from './database-url.js';
import { acmeCommand } from './commands/acme.js';
import { auditCommand } from './commands/audit.js';
import { backupCommand, restoreCommand } from './commands/backup.js';
import { certificateCommand, renewCommand } from './commands/certificate.js';
import { initCommand } from './commands/init.js';
import { intermediateCommand } from './commands/intermediate.js';
import { loginCommand } from './commands/login.js';
import { migrateCommand } from './commands/migrate.js';
import { provisionerCommand } from './commands/provisioner.js';
import { certsCommand, revokeCommand, rootCrlCommand } from './commands/revocation.js';
import { rootCommand } from './commands/root.js';
import { serveCommand } from './commands/serve.js';
import { storeCommand } from './commands/store.js';
import { tokenCommand } from './commands/token.js';

const VERBS: Record<string, (args: string[]) => Promise<void>> = {
  root: rootCommand,
  intermediate: intermediateCommand,
  init: initCommand,
  serve: serveCommand,
  migrate: migrateCommand,
  provisioner: provisionerCommand,
  token: tokenCommand,
  certificate: certificateCommand,
  login: loginCommand,
  renew: renewCommand,
  revoke: revokeCommand,
  certs: certsCommand,
  'root-crl': rootCrlCommand,
  acme: acmeCommand,
  audit: auditCommand,
  backup: backupCommand,
  restore: restoreCommand,
  store: storeCommand,
};

const USAGE = `shortleaf — a private CA for service-to-service mutual TLS

Offline root ceremony:
  shortleaf root init --out DIR
  shortleaf root sign-intermediate --root DIR --csr FILE --out FILE [--permit-dns D] [--permit-uri U] [--status-url http://HOST:PORT] [--ocsp-csr F --ocsp-out F [--ocsp-validity 90d]]
  shortleaf root sign-ocsp --root DIR --csr FILE --out FILE [--validity 90d]   at each ceremony: the root-delegated OCSP responder again
  shortleaf root crl --root DIR --out FILE [--revoke SERIAL --reason R] [--validity 90d]
On the CA server (state in SQLite under --data DIR, or in PostgreSQL with --database URL or SHORTLEAF_DATABASE_URL;
with a URL, --data holds only local files: the development root, passphrase and provisioner keys):
  shortleaf intermediate csr --data DIR|--database URL [--name NAME] [--out FILE] [--ocsp-out FILE]
  shortleaf intermediate import --data DIR|--database URL [--name NAME] --cert FILE --root FILE [--ocsp-cert FILE] [--allow-wider-constraints]
  shortleaf intermediate ocsp-csr --data DIR|--database URL [--name NAME] --out FILE
  shortleaf intermediate ocsp-import --data DIR|--database URL [--name NAME] --cert FILE --root FILE
  shortleaf intermediate activate --data DIR|--database URL NAME
  shortleaf intermediate list --data DIR|--database URL
  shortleaf root-crl import FILE --data DIR|--database URL
  shortleaf init [--data DIR] [--database URL]     development shortcut: all of the above on one machine
  shortleaf serve [--data DIR] [--database URL] [--config FILE] [--listen HOST:PORT] [--status-listen HOST:PORT] [--password-file FILE]
                                            with --database: run any number of instances on one database
  shortleaf migrate --data DIR|--database URL
  shortleaf store copy --from-data DIR --to URL [--password-file FILE]   move a SQLite CA into an empty PostgreSQL database
  shortleaf store restored --database URL --from WHAT   after pg_restore or point-in-time recovery: the next CRL number stays above every one published
  shortleaf provisioner add NAME --data DIR|--database URL --key-out FILE [--allow-dns P] [--allow-ip CIDR] [--allow-uri P] [--allow-email P] [--max-lifetime 7d]
  shortleaf provisioner add NAME --type acme --data DIR|--database URL [--require-eab] [--terms-of-service URL] [--orders-per-hour N] [--failed-validations-per-hour N] [--allow-dns P]...
  shortleaf provisioner list --data DIR|--database URL
  shortleaf acme eab add --provisioner NAME --data DIR|--database URL     prints a key id and HMAC key for one ACME account
  shortleaf acme eab list --provisioner NAME --data DIR|--database URL
  shortleaf revoke SERIAL --reason keyCompromise --data DIR|--database URL
  shortleaf certs list --data DIR|--database URL [--revoked] [--expiring 24h] [--undelivered]
  shortleaf audit --data DIR|--database URL [--since 1h] [--action issue|renew|revoke|restore] [--limit N] [--json]
  shortleaf backup --data DIR --out FILE [--force]     online, consistent; not the passphrase (PostgreSQL: pg_dump; --database is refused)
  shortleaf restore --data DIR --from FILE [--force]   refused while a server holds DIR (PostgreSQL: pg_restore; --database is refused)
Clients:
  shortleaf agent --ca URL --root FILE --cert OUT --key OUT (--token T | --token-file F) [--exec CMD] …
  shortleaf agent crl --url URL [--url URL]... --root-url URL --root FILE --out FILE.pem [--exec CMD] …
                                            (shortleaf agent --help for every option)
  shortleaf token SUBJECT --provisioner NAME --key FILE --ca URL [--san NAME]... [--claim KEY=VALUE]...
  shortleaf token SERIAL --revoke --provisioner NAME --key FILE --ca URL    a token for POST /api/v1/revoke
  shortleaf certificate SUBJECT --ca URL --root FILE --token T --cert OUT --key OUT [--kty EC|RSA|OKP] [--not-after 1h]
  shortleaf certificate SUBJECT --ca URL --root FILE --provisioner OIDC_NAME --cert OUT --key OUT [--san NAME]... [--open] [--client-secret-file F]
                                            signs in at the provisioner's identity provider first; names come from its template
  shortleaf login --provisioner OIDC_NAME --ca URL --root FILE [--open] [--client-secret-file F] [--login-timeout 5m]
                                            single sign-on check: prints who you are and the claims templates can use
  shortleaf renew --ca URL --root FILE --cert FILE --key FILE [--rekey]
`;

/**
 * `shortleaf VERB --help`: the usage lines of that verb, taken from the one usage text so the two
 * cannot drift apart. Verbs parse their flags strictly, so without this `--help` is an error.
 */
function verbUsage(verb: string): string {
  const lines = USAGE.split('\n').filter(
    (line) => line.trimStart().startsWith(`shortleaf ${verb} `) || line.trim() === `shortleaf ${verb}`,
  );
  return `${lines.map((l) => l.trim()).join('\n')}\n`;
}

const wantsHelp = (args: readonly string[]): boolean => args.some((a) => a === '--help' || a === '-h');

async function main(argv: string[]): Promise<number> {
  const [verb, ...args] = argv;
  // The agent is its own program (apps/agent, also shipped alone); it reports its own exit code.
  if (verb === 'agent') return agentCommand(args);
  if (verb === undefined || verb === 'help' || verb === '--help' || verb === '-h') {
    process.stdout.write(USAGE);
    return verb === undefined ? 2 : 0;
  }
  const run = VERBS[verb];
  if (run === undefined) {
    process.stderr.write(`shortleaf: unknown command "${verb}"\n\n${USAGE}`);
    return 2;
  }
  if (wantsHelp(args)) {
    process.stdout.write(verbUsage(verb));
    return 0;
  }
  try {
    await run(args);
    return 0;
  } catch (err) {
    // Stopped on purpose (SIGTERM while serve waited for its database): it said so in its log.
    if (err instanceof Stopped) return 0;
    // A database URL may sit in any message (a driver's, a usage line): never its password.
    if (err instanceof UsageError) {
      process.stderr.write(`shortleaf ${verb}: ${redactUrlsIn(err.message)}\n`);
      return 2;
    }
    const code =
      err instanceof AuthorityError || err instanceof PkiError || err instanceof StoreError
        ? ` [${err.code}]`
        : err instanceof CaProblemError
          ? ` [${err.type}]`
          : '';
    process.stderr.write(`shortleaf ${verb}: ${redactUrlsIn((err as Error).message)}${code}\n`);
    if (debugStackTraces()) process.stderr.write(`${redactUrlsIn(String((err as Error).stack))}\n`);
    return 1;
  }
}

// `pnpm shortleaf` runs scripts in the repository root; relative paths (--out, --data) must mean
// what they mean where the user typed it.
const cwd = invocationDirectory();
if (cwd !== undefined) process.chdir(cwd);
process.exitCode = await main(process.argv.slice(2));
