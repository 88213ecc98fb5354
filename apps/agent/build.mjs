// Bundles the agent into one file, dist/shortleaf-agent.mjs, that runs on a bare `node` (20+):
// what a container image needs to hold, and nothing else. `pnpm build:agent` from the root;
// `node apps/agent/build.mjs --outfile FILE` writes it elsewhere.
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const { values } = parseArgs({ options: { outfile: { type: 'string' } } });

await build({
  entryPoints: [new URL('./src/main.ts', import.meta.url).pathname],
  outfile: values.outfile ?? new URL('./dist/shortleaf-agent.mjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // @peculiar/x509 and its asn1 schema need these at run time; CommonJS dependencies need require.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
  },
  legalComments: 'none',
  logLevel: 'warning',
});
