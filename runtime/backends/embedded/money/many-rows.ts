import type Database from 'better-sqlite3';

/** Rows per statement, largest first: a batch of n rows runs as few statements as these sums allow. */
const SIZES = [256, 32, 4, 1];

/**
 * One INSERT of many rows at a time (`INSERT … VALUES (…), (…), …`): a lease batch writes its
 * ledger rows and its charged calls with a statement per up to 256 rows instead of one per row.
 * The statements for each size are prepared once.
 */
export class ManyRows {
  private readonly statements = new Map<number, Database.Statement>();

  /** `head` is `INSERT … INTO table (cols)`, `tail` what follows the values (e.g. `RETURNING …`). */
  constructor(
    private readonly db: Database.Database,
    private readonly head: string,
    private readonly width: number,
    private readonly tail = '',
  ) {}

  /** Inserts the rows; with a RETURNING tail, returns what it returned. */
  insert(rows: readonly unknown[][]): unknown[] {
    const out: unknown[] = [];
    let at = 0;
    for (const size of SIZES) {
      while (rows.length - at >= size) {
        const args: unknown[] = [];
        for (let i = at; i < at + size; i++) for (const v of rows[i]!) args.push(v);
        const s = this.statement(size);
        if (this.tail) for (const r of s.all(...args)) out.push(r);
        else s.run(...args);
        at += size;
      }
    }
    return out;
  }

  private statement(n: number): Database.Statement {
    let s = this.statements.get(n);
    if (!s) {
      const one = `(${Array(this.width).fill('?').join(', ')})`;
      s = this.db.prepare(`${this.head} VALUES ${Array(n).fill(one).join(', ')} ${this.tail}`);
      this.statements.set(n, s);
    }
    return s;
  }
}
