// Public API of @shortleaf/agent: the `shortleaf agent` command and its parts.
export { agentCommand } from './command.js';
export { AGENT_USAGE } from './cli.js';
