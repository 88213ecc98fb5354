#!/usr/bin/env node
import { agentCommand } from './command.js';

process.exitCode = await agentCommand(process.argv.slice(2));
