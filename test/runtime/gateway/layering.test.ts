import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');

function imports(dir: string): Array<{ file: string; from: string }> {
  return readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.ts'))
    .flatMap((f) =>
      [...readFileSync(join(ROOT, dir, f), 'utf8').matchAll(/from\s+'([^']+)'/g)].map((m) => ({
        file: `${dir}/${f}`,
        from: m[1]!,
      })),
    );
}

describe('the call path is handed what it needs', () => {
  it('imports neither the whole runtime, nor observability, faces, runs or approvals', () => {
    const offenders = imports('runtime/gateway').filter(({ from }) =>
      /(^|\/)runtime\.ts$|\/observability\/|\/faces\/|\/workflows\/|\/approvals\//.test(from),
    );
    expect(offenders).toEqual([]);
  });

  it('reaches providers only through the Provider port', () => {
    const offenders = imports('runtime/gateway').filter(
      ({ from }) => from.includes('adapters/') && !from.endsWith('adapters/provider.ts'),
    );
    expect(offenders).toEqual([]);
  });

  it('leaves the emulator to the provider registry: runtime.ts opens providers, never the emulator', () => {
    const offenders = imports('runtime').filter(({ from }) => from.includes('adapters/emulator'));
    expect(offenders).toEqual([]);
  });
});
