import { readFileSync } from 'node:fs';
import type { RedisClient } from '../connection.ts';

/**
 * The Lua scripts, each the single place its operation's invariant is enforced. Shared fragments in
 * `includes/` are pasted in where a script says `--- @include "includes/x.lua"`. Scripts are
 * registered with `defineCommand` (EVALSHA, falling back to EVAL once) and loaded up front so the
 * hot path is one round trip from the first call.
 */
const SCRIPTS = {
  cpAdmit: 'admit.lua',
  cpSettle: 'settle.lua',
  cpRelease: 'release.lua',
  cpLease: 'lease.lua',
  cpSweep: 'sweep.lua',
  cpCorrect: 'correct.lua',
  cpAppend: 'append.lua',
  cpBudgets: 'budgets.lua',
  cpEnsure: 'ensure.lua',
  cpSetBudget: 'set-budget.lua',
  cpKill: 'kill.lua',
  cpAudit: 'audit.lua',
  cpCaps: 'caps.lua',
  cpPartCap: 'part-cap.lua',
  cpMirror: 'mirror.lua',
  cpHomeRead: 'home-read.lua',
} as const;

type Arg = string | number | Buffer;
type ScriptCall = (numKeys: number, ...keysAndArgs: Arg[]) => Promise<unknown>;

/** A Redis client with the store's scripts defined on it. */
export type ScriptedRedis = RedisClient & Record<keyof typeof SCRIPTS, ScriptCall>;

const INCLUDE = /^--- @include "([^"]+)"\s*$/gm;

export function scriptSource(file: string): string {
  const text = readFileSync(new URL(`./${file}`, import.meta.url), 'utf8');
  return text.replace(INCLUDE, (_, inc: string) =>
    readFileSync(new URL(`./${inc}`, import.meta.url), 'utf8'),
  );
}

const sources = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, file]) => [name, scriptSource(file)]),
) as Record<keyof typeof SCRIPTS, string>;

export async function defineScripts(redis: RedisClient): Promise<ScriptedRedis> {
  for (const [name, lua] of Object.entries(sources)) {
    redis.defineCommand(name, { lua });
    // On a cluster, on every primary: EVALSHA goes to whichever holds the keys' slot.
    for (const node of 'nodes' in redis ? redis.nodes('master') : [redis]) await node.script('LOAD', lua);
  }
  return redis as ScriptedRedis;
}

/** Calls a script with its keys and arguments. */
export function call(redis: ScriptedRedis, name: keyof typeof SCRIPTS, keys: string[], args: Arg[]) {
  return redis[name](keys.length, ...keys, ...args);
}
