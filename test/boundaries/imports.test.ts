import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const PROVIDER_SDKS =
  /from\s+['"](@anthropic-ai\/[^'"]+|openai|@aws-sdk\/client-bedrock[^'"]*|@google\/genai)['"]/;
const MCP_CLIENT = /from\s+['"]@modelcontextprotocol\/sdk\/client[^'"]*['"]/;

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
  it('lets only adapters/ import a provider SDK or an MCP client (tests and benchmarks aside)', () => {
    const offenders = ['runtime', 'workflows', 'approvals']
      .flatMap(files)
      .filter((f) => PROVIDER_SDKS.test(source(f)) || MCP_CLIENT.test(source(f)));
    expect(offenders).toEqual([]);
  });

  it('keeps workflows/ away from adapters/', () => {
    const offenders = files('workflows').filter((f) => /from\s+['"][^'"]*adapters\//.test(source(f)));
    expect(offenders).toEqual([]);
  });

  it('keeps adapters/ leaves: they never import the runtime', () => {
    const offenders = files('adapters').filter((f) => /from\s+['"][^'"]*runtime\//.test(source(f)));
    expect(offenders.map((f) => relative(ROOT, join(ROOT, f)))).toEqual([]);
  });

  it('would catch an offender (the check itself works)', () => {
    expect(PROVIDER_SDKS.test("import Anthropic from '@anthropic-ai/sdk';")).toBe(true);
    expect(MCP_CLIENT.test("import { Client } from '@modelcontextprotocol/sdk/client/index.js';")).toBe(true);
  });
});
