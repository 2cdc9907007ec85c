import { CliError, type Command } from '../command.ts';

export const alertsCommand: Command = {
  name: 'alerts',
  summary: 'send a sample budget alert to every configured destination',
  help: `Usage: chokepoint alerts test [--config FILE] [--json]

Sends one sample budget alert to every destination under alerts: in the config file — each
webhook (JSON, signed with x-chokepoint-signature) and each Slack incoming webhook — once,
without retries, and prints each delivery's HTTP status. Run it where the server's config and
environment are (webhook URLs and secrets may be env:VAR). Exits 1 if any delivery failed.

Real alerts also go to the inbox (an alarm in GET /api/alarms and on the spend page): the test
does not write one there.

Options:
  --config FILE  config file (default ./chokepoint.config.yaml, or $CHOKEPOINT_CONFIG)
  --json         print the deliveries as JSON

Example:
  chokepoint alerts test --config /etc/chokepoint/chokepoint.config.yaml`,
  options: {
    config: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals, out }) {
    const [sub, ...rest] = positionals;
    if (sub !== 'test' || rest.length) {
      throw new CliError(
        `${sub ? `unknown subcommand ${JSON.stringify([sub, ...rest].join(' '))}` : 'missing subcommand'}: expected test\nusage: chokepoint alerts test [--config FILE] [--json]`,
      );
    }
    const { loadConfig } = await import('../../../config/load.ts');
    const { Destinations } = await import('../../../alerts/deliver.ts');
    const { testAlert } = await import('../../../alerts/thresholds.ts');
    const { createLogger } = await import('../../../log.ts');
    const config = loadConfig({ path: values.config as string | undefined });
    const destinations = new Destinations(config.alerts, createLogger({ level: 'silent' }));
    if (!destinations.count) {
      throw new CliError(
        `no alert destinations in ${config.file ?? 'the config (no config file found)'}: add alerts.webhooks or alerts.slack`,
        1,
      );
    }
    const now = Date.now();
    const deliveries = await destinations.send(testAlert(now, config.budgets.timeZone), `alm_test_${now}`, {
      attempts: 1,
    });
    const failed = deliveries.filter((d) => !d.ok).length;
    if (values.json) out(JSON.stringify({ deliveries }, null, 2));
    else {
      for (const d of deliveries) {
        const who = `${d.destination} ${d.url}${d.name ? ` (${d.name})` : ''}`;
        out(`${who}: ${d.ok ? 'delivered' : 'NOT delivered'} (${d.status ?? d.error})`);
      }
      out(`${deliveries.length - failed} of ${deliveries.length} delivered`);
    }
    return failed ? 1 : 0;
  },
};
