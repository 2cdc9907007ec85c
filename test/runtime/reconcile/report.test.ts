import { describe, expect, it } from 'vitest';
import { createEmulator, DEFAULT_ADMIN_KEY, MODELS, priceCall } from '../../../adapters/emulator/index.ts';
import { PriceTable } from '../../../runtime/pricing/pricing.ts';
import { compare, DEFAULT_TOLERANCE, reconTable } from '../../../runtime/reconcile/compare.ts';
import {
  detectFormat,
  parseReport,
  picoToMicros,
  ReportError,
  UNATTRIBUTED,
} from '../../../runtime/reconcile/report.ts';

const prices = new PriceTable();
const DAY = '2026-01-31';

function costReport(rows: Array<Record<string, unknown>>, day = DAY) {
  return JSON.stringify({
    data: [{ starting_at: `${day}T00:00:00Z`, ending_at: '2026-02-01T00:00:00Z', results: rows }],
    has_more: false,
    next_page: null,
  });
}

function errorOf(fn: () => unknown): ReportError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ReportError) return err;
    throw err;
  }
  throw new Error('expected a ReportError');
}

describe('cost report (Admin API, amount in cents as a decimal string)', () => {
  it('sums cents exactly per model and maps aliases to the canonical id', () => {
    const f = parseReport(
      costReport([
        { currency: 'USD', amount: '123.45', model: 'claude-sonnet-4-5', token_type: 'output_tokens' },
        { currency: 'USD', amount: '0.0003', model: 'claude-sonnet-4-5-20250929', token_type: 'input' },
        { currency: 'USD', amount: '10', model: null, description: null },
      ]),
      DAY,
      { prices },
    );
    expect(f.format).toBe('anthropic-cost');
    // 123.45 cents = $1.2345 = 1,234,500 µ$; 0.0003 cents = 3 µ$.
    expect(f.models.get('claude-sonnet-4-5-20250929')!.cost).toBe(1_234_503);
    expect(f.models.get(UNATTRIBUTED)!.cost).toBe(100_000);
  });

  it('reads what the emulator serves, to the µ$ of its billing record', async () => {
    const emu = createEmulator();
    const u = { input: 1234, cacheWrite5m: 2048, cacheWrite1h: 0, cacheRead: 4096, output: 777 };
    const model = MODELS.find((m) => m.id === 'claude-sonnet-4-5-20250929')!;
    const now = Date.now();
    for (let i = 0; i < 3; i++) {
      emu.billing.add({
        id: `m${i}`,
        requestId: `r${i}`,
        at: now,
        model,
        apiKey: 'default',
        usage: u,
        stream: false,
        aborted: false,
      });
    }
    const day = new Date(now).toISOString().slice(0, 10);
    const res = await emu.fetch(
      new Request(
        `http://emu/v1/organizations/cost_report?starting_at=${day}T00:00:00Z&group_by[]=description&limit=1`,
        { headers: { 'x-api-key': DEFAULT_ADMIN_KEY, 'anthropic-version': '2023-06-01' } },
      ),
    );
    const f = parseReport(await res.text(), day, { prices });
    expect(f.models.get(model.id)!.cost).toBe(3 * priceCall(model, u).micros);
  });

  it('names the field that is wrong', () => {
    expect(errorOf(() => parseReport(costReport([{ currency: 'USD' }]), DAY, { prices })).message).toBe(
      'data[0].results[0].amount: required: the cost in cents as a decimal string like "123.45"',
    );
    expect(errorOf(() => parseReport(costReport([{ amount: 12.5 }]), DAY, { prices })).where).toBe(
      'data[0].results[0].amount',
    );
    expect(errorOf(() => parseReport(costReport([{ amount: '1,5' }]), DAY, { prices })).message).toContain(
      'expected cents as a decimal string like "123.45", got "1,5"',
    );
    expect(
      errorOf(() => parseReport(costReport([{ amount: '1', currency: 'EUR' }]), DAY, { prices })).where,
    ).toBe('data[0].results[0].currency');
    expect(errorOf(() => parseReport('{"has_more":false}', DAY, { prices })).message).toBe(
      'data: required: an array of buckets ({starting_at, results})',
    );
    expect(
      errorOf(() => parseReport('{"data":[{"starting_at":"yesterday","results":[]}]}', DAY, { prices }))
        .where,
    ).toBe('data[0].starting_at');
    expect(
      errorOf(() =>
        parseReport(`{"data":[{"starting_at":"${DAY}T00:00:00Z","results":[]}],"has_more":true}`, DAY, {
          prices,
        }),
      ).where,
    ).toBe('has_more');
  });

  it('says which days a report covers when the wanted one is missing', () => {
    const err = errorOf(() => parseReport(costReport([{ amount: '1' }], '2026-01-30'), DAY, { prices }));
    expect(err.message).toBe('report: holds no data for 2026-01-31 (it covers 2026-01-30)');
  });

  it('points at the line and column of bad JSON', () => {
    const err = errorOf(() => parseReport('{\n  "data": [\n    {"starting_at": }\n]}', DAY, { prices }));
    expect(err.message).toBe('line 3, column 21: not valid JSON: expected a value, found "}"');
    expect(errorOf(() => parseReport('{"data": [1, 2}', DAY, { prices })).message).toBe(
      `line 1, column 15: not valid JSON: expected ',' or ']', found "}"`,
    );
    expect(errorOf(() => parseReport('{"data": []', DAY, { prices })).message).toBe(
      `line 1, column 12: not valid JSON: expected ',' or '}', found the end of input`,
    );
  });
});

describe('usage report (tokens by class, priced with the runtime price table)', () => {
  const usage = (rows: Array<Record<string, unknown>>) =>
    JSON.stringify({ data: [{ starting_at: `${DAY}T00:00:00Z`, results: rows }], has_more: false });

  it('prices each class, and the 200k-1M window at long-context rates', () => {
    const row = {
      model: 'claude-sonnet-4-5',
      uncached_input_tokens: 1_000_000,
      cache_creation: { ephemeral_5m_input_tokens: 1_000_000, ephemeral_1h_input_tokens: 0 },
      cache_read_input_tokens: 1_000_000,
      output_tokens: 1_000_000,
    };
    const f = parseReport(usage([row]), DAY, { prices });
    // $3 + $3.75 + $0.30 + $15
    expect(f.models.get('claude-sonnet-4-5-20250929')!.cost).toBe(22_050_000);
    expect(f.models.get('claude-sonnet-4-5-20250929')!.tokens!.cacheRead).toBe(1_000_000);
    const long = parseReport(usage([{ ...row, context_window: '200k-1M' }]), DAY, { prices });
    // $6 + $7.50 + $0.60 + $22.50
    expect(long.models.get('claude-sonnet-4-5-20250929')!.cost).toBe(36_600_000);
    expect(detectFormat(usage([row]))).toBe('anthropic-usage');
  });

  it('needs the model to price a row, and a known price', () => {
    expect(
      errorOf(() => parseReport(usage([{ uncached_input_tokens: 1, output_tokens: 1 }]), DAY, { prices }))
        .where,
    ).toBe('data[0].results[0].model');
    expect(
      errorOf(() =>
        parseReport(usage([{ model: 'gpt-9', uncached_input_tokens: 1, output_tokens: 1 }]), DAY, { prices }),
      ).message,
    ).toContain('no price is known for "gpt-9"');
    expect(
      errorOf(() =>
        parseReport(
          usage([{ model: 'claude-sonnet-4-5', uncached_input_tokens: -3, output_tokens: 1 }]),
          DAY,
          {
            prices,
            format: 'anthropic-usage',
          },
        ),
      ).where,
    ).toBe('data[0].results[0].uncached_input_tokens');
  });
});

describe('CSV (date,model,cost_usd)', () => {
  it('sums the day, ignores other days, accepts quotes, $ and sub-µ$ decimals', () => {
    const csv = [
      'date,model,cost_usd,account',
      '2026-01-30,claude-haiku-4-5,100.00,a',
      `${DAY},claude-haiku-4-5,0.0000004,a`,
      `${DAY},"claude-haiku-4-5",$0.0000004,"b, inc"`,
      `${DAY},bedrock-titan,12.345678,a`,
      '',
    ].join('\r\n');
    const f = parseReport(csv, DAY, { prices });
    expect(f.format).toBe('csv');
    // 0.8 µ$ summed exactly before rounding: 1 µ$.
    expect(f.models.get('claude-haiku-4-5-20251001')!.cost).toBe(1);
    expect(f.models.get('bedrock-titan')!.cost).toBe(12_345_678);
    expect(f.covers).toEqual(['2026-01-30', DAY]);
  });

  it('names the line and the column of a bad line', () => {
    const bad = (lines: string[]) => errorOf(() => parseReport(lines.join('\n'), DAY, { prices }));
    expect(bad(['date,model,cost_usd', `${DAY},m,1.00`, `${DAY},m,abc`]).message).toBe(
      'line 3: cost_usd: expected a dollar amount like 12.34, got "abc"',
    );
    expect(bad(['date,model,cost_usd', '31/01/2026,m,1']).message).toBe(
      'line 2: date: expected a date like 2026-01-31, got "31/01/2026"',
    );
    expect(bad(['date,model,cost_usd', `${DAY},m`]).message).toBe(
      'line 2: expected 3 fields like the header, got 2',
    );
    expect(bad(['day,model,usd', `${DAY},m,1`]).message).toBe(
      'line 1: the header must name the columns date,model,cost_usd (missing: date, cost_usd)',
    );
    expect(bad(['date,model,cost_usd', `${DAY},"m,1`]).message).toBe('line 2: a quoted field is not closed');
    expect(bad(['date,model,cost_usd', `${DAY},,1`]).message).toBe('line 2: model: required');
    expect(bad(['']).message).toContain('line 1: empty');
  });
});

describe('comparison', () => {
  it('matches, tolerates up to the larger of 1% and one cent, and flags beyond it', () => {
    const f = parseReport(
      ['date,model,cost_usd', `${DAY},a,10.00`, `${DAY},b,200.00`, `${DAY},c,300.00`, `${DAY},d,5.00`].join(
        '\n',
      ),
      DAY,
      { prices },
    );
    const tokens = { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 };
    const r = compare(
      [
        { model: 'a', cost: 10_000_000, calls: 1, tokens },
        { model: 'b', cost: 201_000_000, calls: 1, tokens }, // $1 off: 1% of $201 is $2.01
        { model: 'c', cost: 296_900_000, calls: 1, tokens }, // $3.10 off: 1% of $300 is $3
        { model: 'e', cost: 500_000, calls: 1, tokens }, // not on the bill at all, $0.50
        { model: 'f', cost: 5_000, calls: 1, tokens }, // half a cent, not on the bill: the floor
      ],
      f,
      DEFAULT_TOLERANCE,
    );
    const by = Object.fromEntries(r.rows.map((x) => [x.model, x]));
    expect(by.a!.verdict).toBe('match');
    expect(by.b!.verdict).toBe('within');
    expect(by.c!.verdict).toBe('divergent');
    expect(by.c!.diff).toBe(3_100_000);
    expect(by.d!.verdict).toBe('divergent'); // $5 billed, nothing in the ledger
    expect(by.e!.verdict).toBe('divergent'); // a 100% gap is an alarm at any size over a cent
    expect(by.e!.relative).toBeNull();
    expect(by.f!.verdict).toBe('within');
    expect(r.verdict).toBe('divergent');
    expect(reconTable(r)[0]).toEqual([
      'MODEL',
      'LEDGER USD',
      'PROVIDER USD',
      'DIFF USD',
      'DIFF %',
      'VERDICT',
    ]);
    expect(reconTable(r).at(-1)![0]).toBe('total');
  });

  it('by default a day with $0.59 in the ledger and $0.00 billed is an alarm (issue 17, item 4)', () => {
    const tokens = { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 };
    const f = parseReport(['date,model,cost_usd', `${DAY},a,0.00`].join('\n'), DAY, { prices });
    const r = compare([{ model: 'a', cost: 590_000, calls: 3, tokens }], f, DEFAULT_TOLERANCE);
    expect(r.rows[0]!.verdict).toBe('divergent');
    expect(r.verdict).toBe('divergent');
    expect(DEFAULT_TOLERANCE).toEqual({ relative: 0.01, absolute: 10_000 });
  });

  it('rounds picodollars half away from zero', () => {
    expect(picoToMicros(500_000n)).toBe(1);
    expect(picoToMicros(499_999n)).toBe(0);
    expect(picoToMicros(-500_000n)).toBe(-1);
  });
});
