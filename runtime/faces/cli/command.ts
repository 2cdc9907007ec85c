import { type ParseArgsConfig, parseArgs } from 'node:util';

/** A failure the user can fix: printed as one line (no stack) with a non-zero exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  name: string;
  summary: string;
  /** Usage lines and details shown by `--help`. */
  help: string;
  options: Options;
  /** Commands that talk to a running server get --url, --token and --json added. */
  remote?: boolean;
  run(ctx: CommandContext): Promise<number | undefined>;
}

export interface CommandContext {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  out: (line: string) => void;
  err: (line: string) => void;
}

export const REMOTE_OPTIONS: Options = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
};

export const REMOTE_HELP = `
Server options:
  --url URL      Chokepoint server (default $CHOKEPOINT_URL or http://127.0.0.1:8787)
  --token TOKEN  operator token (default $CHOKEPOINT_TOKEN)
  --json         print JSON for scripts`;

export function parseCommandArgs(cmd: Command, argv: string[]) {
  const options: Options = { help: { type: 'boolean', short: 'h' }, ...cmd.options };
  if (cmd.remote) Object.assign(options, REMOTE_OPTIONS);
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError(
      `${(err as Error).message.replace(/\. To specify.*$/, '')}\nrun \`chokepoint ${cmd.name} --help\` for usage`,
    );
  }
}
