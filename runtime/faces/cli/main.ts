import { readFileSync } from 'node:fs';
import { ConfigError } from '../../config/error.ts';
import { CliError, type Command, parseCommandArgs } from './command.ts';
import { alertsCommand } from './commands/alerts.ts';
import { approvalsCommand } from './commands/approvals.ts';
import { budgetsCommand } from './commands/budgets.ts';
import { drillCommand } from './commands/drill.ts';
import { emulatorCommand } from './commands/emulator.ts';
import { keysCommand } from './commands/keys.ts';
import { killCommand, unkillCommand } from './commands/kill.ts';
import { mcpCommand } from './commands/mcp.ts';
import { operatorsCommand } from './commands/operators.ts';
import { pricesCommand } from './commands/prices.ts';
import { reconcileCommand } from './commands/reconcile.ts';
import { runCommand, runsCommand } from './commands/runs.ts';
import { serveCommand } from './commands/serve.ts';
import { workerCommand } from './commands/worker.ts';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const COMMANDS: Command[] = [
  serveCommand,
  workerCommand,
  runCommand,
  runsCommand,
  approvalsCommand,
  budgetsCommand,
  killCommand,
  unkillCommand,
  keysCommand,
  operatorsCommand,
  pricesCommand,
  reconcileCommand,
  alertsCommand,
  drillCommand,
  mcpCommand,
  emulatorCommand,
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `chokepoint ${pkg.version}: every model and tool call through one chokepoint`,
    '',
    'Usage: chokepoint <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `chokepoint <command> --help` for the options of one command.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`${line}\n`);
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    out(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    out(pkg.version);
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    err(`chokepoint: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  try {
    const { values, positionals } = parseCommandArgs(cmd, rest);
    if (values.help) {
      out(cmd.help);
      return 0;
    }
    return (await cmd.run({ values, positionals, out, err })) ?? 0;
  } catch (e) {
    if (e instanceof CliError) {
      err(`chokepoint ${cmd.name}: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof ConfigError) {
      err(`chokepoint ${cmd.name}: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
