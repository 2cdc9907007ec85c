/** Every problem with a config, one line each, by path. Start-up prints these, never a stack.
 * Its own module: the CLI recognises it without loading the config's schema and parser. */
export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    readonly file?: string,
  ) {
    super(
      `invalid configuration${file ? ` in ${file}` : ''}:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}
