import { userInfo } from 'node:os';
import type { Operator } from '../../../auth/operators.ts';
import { remoteSettings, TOKEN_HINT } from '../client.ts';
import { CliError, type Command } from '../command.ts';

export const mcpCommand: Command = {
  name: 'mcp',
  summary: 'Chokepoint as an MCP server over stdio (for Claude Desktop, IDEs, agents)',
  help: `Usage:
  chokepoint mcp [--url URL] [--token TOKEN]      stdio, proxied to a running server's /mcp
  chokepoint mcp --embedded [--config FILE]       stdio, the runtime opened in this process

Speaks MCP on stdin/stdout so that an MCP client can start and watch runs, decide approvals,
read spend and flip kill switches. stdout is the protocol; diagnostics go to stderr.

By default it talks to a running Chokepoint (\`chokepoint serve\`) at --url, as the operator whose
token it sends: roles and the audit log are the server's (a viewer token can list and read, but
start_run, decide_approval and kill need the operator role). With --embedded it opens the
configured store and the workflows folder itself and runs the runs in this process (no server
needed; as the --token operator, or as local:<user> with the admin role without one).

Tools: list_workflows, start_run (wait: true follows the run with progress notifications until
it ends or suspends; as an MCP task it returns at once and the task follows the run), get_run,
list_runs, list_approvals, decide_approval, get_spend, kill.
Resources (subscribable): chokepoint://runs/{id}, chokepoint://budgets/{scope}.

Options:
  --url URL      Chokepoint server (default $CHOKEPOINT_URL or http://127.0.0.1:8787)
  --token TOKEN  operator token (default $CHOKEPOINT_TOKEN)
  --embedded     run the MCP server in this process instead of proxying to a server
  --config FILE  config file for --embedded (default ./chokepoint.config.yaml, or $CHOKEPOINT_CONFIG)

Claude Desktop (claude_desktop_config.json), or any MCP client that starts stdio servers:
  {
    "mcpServers": {
      "chokepoint": {
        "command": "npx",
        "args": ["chokepoint", "mcp", "--url", "http://127.0.0.1:8787"],
        "env": { "CHOKEPOINT_TOKEN": "cpo_..." }
      }
    }
  }

Clients that speak streamable HTTP can skip this command: point them at http://127.0.0.1:8787/mcp
with the header "Authorization: Bearer cpo_...".`,
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    embedded: { type: 'boolean' },
    config: { type: 'string' },
  },
  async run({ values, positionals, err }) {
    if (positionals.length) {
      throw new CliError(
        `unexpected argument ${JSON.stringify(positionals[0])}\nrun \`chokepoint mcp --help\``,
      );
    }
    if (!values.embedded) {
      if (values.config !== undefined) throw new CliError('--config applies to --embedded only');
      const s = remoteSettings(values);
      const { proxyStdio } = await import('../../mcp/proxy.ts');
      await proxyStdio({ url: s.url, token: s.token, log: err });
      return 0;
    }
    if (values.url !== undefined)
      throw new CliError('--url does not apply to --embedded (it opens the store here)');
    // The runtime's modules load here, not with the CLI: every other command starts without them.
    const { loadConfig } = await import('../../../config/load.ts');
    const { compose } = await import('../../../compose.ts');
    const { createLogger } = await import('../../../log.ts');
    const { createHono } = await import('../../http/app.ts');
    const { serveStdio } = await import('../../mcp/stdio.ts');
    const config = loadConfig({ path: values.config as string | undefined });
    const log = createLogger({ level: config.logLevel === 'debug' ? 'debug' : 'warn' });
    const rt = await compose(config, log);
    let operator: Operator;
    try {
      const token = ((values.token as string | undefined) ?? process.env.CHOKEPOINT_TOKEN ?? '').trim();
      if (token) {
        const op = rt.operatorSetup.registry.authenticate(token);
        if (!op) throw new CliError(`the operator token is not known to this store's config: ${TOKEN_HINT}`);
        operator = op;
      } else {
        operator = { name: `local:${userInfo().username}`, role: 'admin' };
      }
    } catch (e) {
      await rt.close();
      throw e;
    }
    err(
      `chokepoint mcp: embedded (${config.store.backend} store), acting as ${operator.name} (${operator.role})`,
    );
    const closing = serveStdio(rt, createHono(rt), operator);
    const signal = new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    await Promise.race([closing, signal]);
    await rt.close();
    return 0;
  },
};
