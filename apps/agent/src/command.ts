import { AgentExit, createCertificateAgent } from './certificate-agent.js';
import { AGENT_USAGE, AgentUsageError, parseAgentArgs } from './cli.js';
import { createCrlAgent } from './crl-agent.js';
import { startHealthServer } from './health.js';
import { createAgentLogger } from './log.js';

/**
 * Sleeps that a stop request cuts short: resolves true after `ms`, false once stopping. Long
 * waits are chained, since a timer holds at most about 24 days.
 */
function stoppableSleep(stopping: AbortSignal) {
  return (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (stopping.aborted) return resolve(false);
      const chunk = Math.min(ms, 2 ** 31 - 1);
      const timer = setTimeout(() => {
        stopping.removeEventListener('abort', onAbort);
        resolve(chunk < ms ? stoppableSleep(stopping)(ms - chunk) : true);
      }, chunk);
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      stopping.addEventListener('abort', onAbort, { once: true });
    });
}

/**
 * `shortleaf agent …` and the standalone `shortleaf-agent`: runs the certificate or CRL agent
 * until SIGTERM or SIGINT, and returns the process exit code (2: a new token is needed).
 */
export async function agentCommand(args: string[]): Promise<number> {
  if (args.length === 0 || args[0] === '--help' || args[0] === '-h' || args[0] === 'help') {
    process.stdout.write(AGENT_USAGE);
    return args.length === 0 ? 2 : 0;
  }
  const logger = createAgentLogger();
  let command;
  try {
    command = parseAgentArgs(args);
  } catch (err) {
    if (err instanceof AgentUsageError) {
      process.stderr.write(`shortleaf agent: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info('stopping', { signal });
    stop.abort();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const deps = { logger, now: () => new Date(), random: Math.random, sleep: stoppableSleep(stop.signal) };
  try {
    if (command.mode === 'crl') {
      const agent = createCrlAgent(command, deps);
      if (command.once) {
        try {
          await agent.pollOnce();
          return 0;
        } catch (err) {
          logger.error('crl_refused', {
            error: (err as Error).message,
            code: (err as { code?: string }).code ?? null,
            kept: command.out,
          });
          return 1;
        }
      }
      await agent.run();
      return 0;
    }
    for (const flag of command.secretsOnCommandLine) {
      logger.warn('secret_on_command_line', {
        flag,
        note: `every local user can read ${flag} in ps; give it as ${flag}-file FILE or in SHORTLEAF_EAB_HMAC`,
      });
    }
    const agent = createCertificateAgent(command.options, deps);
    if (command.once) {
      const outcome = await agent.once(command.force);
      logger.info('once_done', { outcome });
      return 0;
    }
    const health =
      command.healthAddr === null ? null : await startHealthServer(command.healthAddr, agent.status, deps.now);
    if (health !== null) logger.info('health_listening', { address: `${command.healthAddr!.host}:${health.port}` });
    try {
      await agent.run();
    } finally {
      await health?.close();
    }
    return 0;
  } catch (err) {
    if (err instanceof AgentExit) {
      process.stderr.write(`shortleaf agent: ${err.message}\n`);
      return err.code;
    }
    logger.error('agent_failed', { error: (err as Error).message });
    process.stderr.write(`shortleaf agent: ${(err as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
