import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../../runtime/backends/embedded/money/schema.ts';
import {
  type EmbeddedMoneyStore,
  openEmbeddedStore,
} from '../../../runtime/backends/embedded/money/store.ts';
import { PAGE_SIZE } from '../../../runtime/backends/embedded/sqlite.ts';
import { budgetId } from '../../../runtime/store/records.ts';
import { moneyStoreContract, storeOptions, TestClock } from './contract.ts';
import { rateLimitContract } from './contract-rates.ts';
import { leaseStoreContract } from './lease-contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'cp-embedded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

describe('embedded money store (SQLite)', () => {
  moneyStoreContract({
    open: async (options) => openEmbeddedStore(':memory:', options),
    corruptCeiling: async (store, scope) => {
      (store as EmbeddedMoneyStore).db
        .prepare("UPDATE budgets SET ceiling = 'lots' WHERE id = ?")
        .run(budgetId(scope));
    },
    openDoomed: async (options) => {
      const store = openEmbeddedStore(join(dir, `doomed-${files++}.db`), options);
      return { store, cut: async () => void store.db.close() };
    },
  });
  leaseStoreContract({
    open: async (options) => openEmbeddedStore(':memory:', options),
    corruptCeiling: async (store, scope) => {
      (store as EmbeddedMoneyStore).db
        .prepare("UPDATE budgets SET ceiling = 'lots' WHERE id = ?")
        .run(budgetId(scope));
    },
    openDoomed: async (options) => {
      const store = openEmbeddedStore(join(dir, `doomed-${files++}.db`), options);
      return { store, cut: async () => void store.db.close() };
    },
  });
});

describe('embedded money store (SQLite): rate limits', () => {
  rateLimitContract({
    open: async (options) => openEmbeddedStore(':memory:', options),
    corruptCeiling: async () => {},
    openDoomed: async () => {
      throw new Error('not used');
    },
  });
});

describe('embedded store file', () => {
  const options = () => storeOptions(new TestClock());

  it('creates its schema once and shares budgets between stores on one file', async () => {
    const path = join(dir, `shared-${files++}.db`);
    const a = openEmbeddedStore(path, options());
    const b = openEmbeddedStore(path, options());
    try {
      await a.ensureBudget('team:payments', { ceiling: 7, window: 'total' });
      expect(await b.getBudget('team:payments')).toMatchObject({ ceiling: 7 });
      expect(a.db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(a.db.prepare('SELECT COUNT(*) AS n FROM schema_version').get()).toEqual({ n: 1 });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('makes a new file with 16 KiB pages; a file made with other pages keeps them', async () => {
    const fresh = openEmbeddedStore(join(dir, `pages-${files++}.db`), options());
    expect(fresh.db.pragma('page_size', { simple: true })).toBe(PAGE_SIZE);
    await fresh.close();
    // A file from before: 4 KiB pages, and no reservations.calls column (added on open).
    const path = join(dir, `old-${files++}.db`);
    const old = new Database(path);
    old.pragma('page_size = 4096');
    old.pragma('journal_mode = WAL');
    old.close();
    const a = openEmbeddedStore(path, options());
    await a.ensureBudget('team:payments', { ceiling: 1_000_000, window: 'day' });
    const admitted = await a.admit({
      identity: { team: 'payments', env: 'prod', seat: 'alice' },
      amount: 1_000,
      lease: { upTo: 10_000, share: 1 },
    });
    if (!admitted.ok) throw new Error('refused');
    await a.close();
    const b = openEmbeddedStore(path, options());
    try {
      expect(b.db.pragma('page_size', { simple: true })).toBe(4096);
      const cols = b.db.prepare("SELECT name FROM pragma_table_info('reservations')").all() as {
        name: string;
      }[];
      expect(cols.map((c) => c.name)).toContain('calls');
    } finally {
      await b.close();
    }
  });

  it('moves a version 1 file to version 2 (the calls of a lease in its row); version 1 would refuse it', async () => {
    const path = join(dir, `v1-${files++}.db`);
    await openEmbeddedStore(path, options()).close();
    const raw = new Database(path);
    raw.exec('ALTER TABLE reservations DROP COLUMN calls; DELETE FROM schema_version;');
    raw.prepare('INSERT INTO schema_version (version) VALUES (1)').run();
    raw.close();
    const a = openEmbeddedStore(path, options());
    try {
      const versions = a.db.prepare('SELECT version FROM schema_version ORDER BY version').all();
      expect(versions).toEqual([{ version: 1 }, { version: 2 }]);
      const cols = a.db.prepare("SELECT name FROM pragma_table_info('reservations')").all() as {
        name: string;
      }[];
      expect(cols.map((c) => c.name)).toContain('calls');
    } finally {
      await a.close();
    }
    expect(SCHEMA_VERSION).toBe(2);
  });

  it('refuses to open a file written by a newer schema', async () => {
    const path = join(dir, `newer-${files++}.db`);
    const a = openEmbeddedStore(path, options());
    a.db.prepare('INSERT INTO schema_version (version) VALUES (99)').run();
    await a.close();
    expect(() => openEmbeddedStore(path, options())).toThrow(/schema version 99/);
  });
});
