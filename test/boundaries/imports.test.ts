import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const PROVIDER_SDKS =
  /from\s+['"](@anthropic-ai\/[^'"]+|openai|@aws-sdk\/client-bedrock[^'"]*|@google\/genai|undici)['"]/;
const MCP_CLIENT = /from\s+['"]@modelcontextprotocol\/sdk\/client[^'"]*['"]/;
/** The providers' HTTP client (adapters/http/upstream.ts on h1.ts), and what a client of one's own
 * would be made of: TLS connections, node's HTTPS client. */
const PROVIDER_HTTP =
  /from\s+['"]([^'"]*adapters\/http\/(upstream|h1)\.ts|node:tls|node:https|tls|https)['"]/;

function files(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(join(ROOT, dir))) return out;
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...files(path));
    else if (/\.(ts|js|mjs|tsx)$/.test(name)) out.push(path);
  }
  return out;
}

const source = (f: string) => readFileSync(join(ROOT, f), 'utf8');

describe('the law of no direct calls', () => {
  it("lets only adapters/ import a provider SDK, the providers' HTTP client, TLS or an MCP client (tests and benchmarks aside)", () => {
    const offenders = ['runtime', 'workflows', 'approvals']
      .flatMap(files)
      .filter(
        (f) => PROVIDER_SDKS.test(source(f)) || PROVIDER_HTTP.test(source(f)) || MCP_CLIENT.test(source(f)),
      );
    expect(offenders).toEqual([]);
  });

  it('keeps workflows/ away from adapters/', () => {
    const offenders = files('workflows').filter((f) => /from\s+['"][^'"]*adapters\//.test(source(f)));
    expect(offenders).toEqual([]);
  });

  it('lets workflows/ import only the public entry, chokepoint/workflow, of ours', () => {
    // Every specifier after `from` or in `import(...)`: ours are relative paths and chokepoint/*.
    const specifiers = /(?:\bfrom\s*|\bimport\s*\(\s*)['"]([^'"]+)['"]/g;
    const wrong = (file: string, text: string) =>
      [...text.matchAll(specifiers)]
        .map((m) => m[1]!)
        .filter((spec) =>
          spec.startsWith('.')
            ? !relative('workflows', join(dirname(file), spec)).match(/^[^.]/)
            : /^chokepoint(\/|$)/.test(spec) && spec !== 'chokepoint/workflow',
        )
        .map((spec) => `${file}: ${spec}`);
    expect(files('workflows').length).toBeGreaterThan(0);
    expect(files('workflows').flatMap((f) => wrong(f, source(f)))).toEqual([]);
    // The check itself works: the old import path, a deep one, a lazy one; a sibling file is fine.
    const old = "import { defineAgent } from '../runtime/workflows/define.ts';\n";
    const deep = "export { x } from 'chokepoint/runtime/money.ts';\nawait import('../approvals/x.ts');\n";
    expect(wrong('workflows/a.ts', `${old}${deep}import { y } from './lib/y.ts';`)).toEqual([
      'workflows/a.ts: ../runtime/workflows/define.ts',
      'workflows/a.ts: chokepoint/runtime/money.ts',
      'workflows/a.ts: ../approvals/x.ts',
    ]);
  });

  it('keeps adapters/ leaves: they never import the runtime', () => {
    const offenders = files('adapters').filter((f) => /from\s+['"][^'"]*runtime\//.test(source(f)));
    expect(offenders.map((f) => relative(ROOT, join(ROOT, f)))).toEqual([]);
  });

  it('would catch an offender (the check itself works)', () => {
    expect(PROVIDER_SDKS.test("import Anthropic from '@anthropic-ai/sdk';")).toBe(true);
    expect(PROVIDER_SDKS.test("import { Agent } from 'undici';")).toBe(true);
    expect(PROVIDER_HTTP.test("import { Upstream } from '../../adapters/http/upstream.ts';")).toBe(true);
    expect(PROVIDER_HTTP.test("import { connect } from 'node:tls';")).toBe(true);
    expect(PROVIDER_HTTP.test("import { protocolSwitch } from '../../../adapters/http/h2c.ts';")).toBe(false);
    expect(MCP_CLIENT.test("import { Client } from '@modelcontextprotocol/sdk/client/index.js';")).toBe(true);
  });
});
