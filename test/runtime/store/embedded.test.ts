import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe } from 'vitest';
import { type EmbeddedMoneyStore, openEmbeddedStore } from '../../../runtime/store/embedded/store.ts';
import { budgetId } from '../../../runtime/store/records.ts';
import { moneyStoreContract } from './contract.ts';

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
});
