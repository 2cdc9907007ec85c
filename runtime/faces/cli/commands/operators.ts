import { newOperatorToken, type Role, sha256 } from '../../../auth/operators.ts';
import type { Command } from '../command.ts';
import { CliError } from '../command.ts';

const ROLES: Role[] = ['viewer', 'operator', 'admin'];

export const operatorsCommand: Command = {
  name: 'operators',
  summary: 'create an operator token (for the inbox, the API and the CLI)',
  help: `Usage: chokepoint operators create --name NAME --role viewer|operator|admin

Creates an operator token and prints it once, with the line to add under auth.operators in
chokepoint.config.yaml. Only the token's SHA-256 goes into the config; give the token to the
person, who logs in to the inbox with it (or sets CHOKEPOINT_TOKEN for the CLI). Restart the
servers (or deploy the config) for it to take effect; remove the line to revoke it.

Roles:
  viewer    reads everything: inbox, runs, budgets, spend
  operator  also decides approvals, kills and lifts kill switches, starts and kills runs
  admin     also changes budget ceilings and defaults, freezes budgets, manages API keys

Example:
  chokepoint operators create --name alice --role operator`,
  options: {
    name: { type: 'string' },
    role: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals, out }) {
    const [sub] = positionals;
    if (sub !== 'create') {
      throw new CliError(
        `${sub ? `unknown subcommand ${JSON.stringify(sub)}` : 'missing subcommand'}: expected create\nusage: chokepoint operators create --name NAME --role viewer|operator|admin`,
      );
    }
    const name = typeof values.name === 'string' ? values.name.trim() : '';
    if (!/^[A-Za-z0-9][A-Za-z0-9._@ -]{0,63}$/.test(name)) {
      throw new CliError(
        '--name is required: the person or service the token is for (letters, digits, . _ @ - space)',
      );
    }
    const role = values.role as Role;
    if (!ROLES.includes(role)) {
      throw new CliError(
        `--role: expected one of ${ROLES.join(', ')}, got ${JSON.stringify(values.role ?? null)}`,
      );
    }
    const token = newOperatorToken();
    const line = `    - { name: ${JSON.stringify(name)}, role: ${role}, tokenSha256: ${sha256(token)} }`;
    if (values.json) {
      out(JSON.stringify({ name, role, token, tokenSha256: sha256(token) }, null, 2));
      return 0;
    }
    out(`token for ${name} (${role}), shown once:`);
    out(`  ${token}`);
    out('');
    out('add to chokepoint.config.yaml (then restart or redeploy):');
    out('auth:');
    out('  operators:');
    out(line);
    return 0;
  },
};
