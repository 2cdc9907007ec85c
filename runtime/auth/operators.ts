import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/error.ts';
import type { Config } from '../config/load.ts';
import { privateDir } from '../store/data-dir.ts';

export type Role = 'viewer' | 'operator' | 'admin';

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export interface Operator {
  name: string;
  role: Role;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function roleAtLeast(have: Role, need: Role): boolean {
  return RANK[have] >= RANK[need];
}

/** A new operator token: `cpo_` + 32 random bytes, base64url. */
export function newOperatorToken(): string {
  return `cpo_${randomBytes(32).toString('base64url')}`;
}

/**
 * Operator tokens, known only by their SHA-256. Sources: `auth.operators` in the config,
 * CHOKEPOINT_ADMIN_TOKEN, and otherwise an admin token created on first start in the data folder.
 */
export class OperatorRegistry {
  private readonly hashes = new Map<string, Operator>();

  add(op: Operator, tokenHash: string): void {
    this.hashes.set(tokenHash, op);
  }

  authenticate(token: string | undefined): Operator | undefined {
    if (!token) return undefined;
    return this.hashes.get(sha256(token));
  }

  /** The operator whose token has this SHA-256 (inbox sessions keep the hash, never the token). */
  byHash(hash: string): Operator | undefined {
    return this.hashes.get(hash);
  }

  get size(): number {
    return this.hashes.size;
  }
}

export interface OperatorSetup {
  registry: OperatorRegistry;
  /** Set when this start created the admin token: print it once. */
  createdAdminToken?: string;
  /** Where the admin token lives when it came from the data folder. */
  adminTokenFile?: string;
}

export function loadOperators(config: Config, env: NodeJS.ProcessEnv = process.env): OperatorSetup {
  const registry = new OperatorRegistry();
  const problems: string[] = [];
  config.operators.forEach((op, i) => {
    let hash = op.tokenSha256;
    if (op.token) {
      const token = op.token.startsWith('env:') ? env[op.token.slice(4)] : op.token;
      if (!token)
        problems.push(`auth.operators.${i}.token: environment variable ${op.token.slice(4)} is not set`);
      else hash = sha256(token);
    }
    if (!hash && !op.token) problems.push(`auth.operators.${i}: give either token or tokenSha256`);
    if (hash) registry.add({ name: op.name, role: op.role }, hash);
  });
  if (problems.length) throw new ConfigError(problems, config.file);

  if (config.adminToken) {
    registry.add({ name: 'admin', role: 'admin' }, sha256(config.adminToken));
    return { registry };
  }
  const file = join(config.dataDir, 'admin-token');
  let created: string | undefined;
  privateDir(config.dataDir);
  if (!existsSync(file)) {
    created = newOperatorToken();
    writeFileSync(file, `${created}\n`, { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  const token = created ?? readFileSync(file, 'utf8').trim();
  registry.add({ name: 'admin', role: 'admin' }, sha256(token));
  return { registry, createdAdminToken: created, adminTokenFile: file };
}
