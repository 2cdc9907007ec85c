import type { TokenCounts } from '../../../store/port.ts';
import type { LedgerView } from '../../views/ledger.ts';
import type { JournalView } from '../../views/runs.ts';
import { usd } from '../layout.tsx';
import { latency, num, offset, utc } from './run-parts.tsx';

/** A run's timeline: every model and tool call (the journal merged with the ledger), in time order. */

export interface TimelineRow {
  at: number;
  /** The step number (1-based journal position); none for an attempt that did not complete. */
  step?: number;
  kind: string;
  name: string;
  ledger?: LedgerView;
}

/** Every journal entry with its ledger entry, plus the run's ledger entries no step refers to
 * (refused, failed or expired attempts), in time order. */
export function timeline(journal: JournalView[], ledger: LedgerView[]): TimelineRow[] {
  const byId = new Map(ledger.map((e) => [e.id, e]));
  const used = new Set<string>();
  const rows: TimelineRow[] = journal.map((j, i) => {
    const l = j.ledgerId ? byId.get(j.ledgerId) : undefined;
    if (l) used.add(l.id);
    // When the step completed (as the conversation shows it): after its ledger entry was written.
    return { at: Date.parse(j.at), step: i + 1, kind: j.kind, name: j.name, ledger: l };
  });
  for (const l of ledger) {
    if (!used.has(l.id)) rows.push({ at: Date.parse(l.at), kind: l.kind, name: l.name, ledger: l });
  }
  return rows.sort((a, b) => a.at - b.at || (a.step ?? Infinity) - (b.step ?? Infinity));
}

const cacheWrite = (t: TokenCounts) => t.cacheWrite5m + t.cacheWrite1h;

export function Timeline(props: { rows: TimelineRow[]; start: number }) {
  const { rows, start } = props;
  if (rows.length === 0) return <p class="muted">No model or tool calls yet.</p>;
  const total = { input: 0, write: 0, read: 0, output: 0, cost: 0 };
  for (const r of rows) {
    if (!r.ledger) continue;
    total.input += r.ledger.tokens.input;
    total.write += cacheWrite(r.ledger.tokens);
    total.read += r.ledger.tokens.cacheRead;
    total.output += r.ledger.tokens.output;
    total.cost += r.ledger.cost;
  }
  return (
    <div class="scroll">
      <table class="timeline">
        <caption class="sr">Model and tool calls in time order, with tokens, cost and outcome</caption>
        <thead>
          <tr>
            <th scope="col" class="num">
              Step
            </th>
            <th scope="col">Time</th>
            <th scope="col" class="opt">
              Kind
            </th>
            <th scope="col">Model or tool</th>
            <th scope="col" class="opt num">
              Input
            </th>
            <th scope="col" class="opt num">
              Cache write
            </th>
            <th scope="col" class="opt num">
              Cache read
            </th>
            <th scope="col" class="opt num">
              Output
            </th>
            <th scope="col" class="num">
              Cost
            </th>
            <th scope="col" class="opt num">
              Cache hit
            </th>
            <th scope="col" class="opt num">
              Latency
            </th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => {
            const l = r.ledger;
            const at = new Date(r.at).toISOString();
            return (
              <tr
                id={r.step ? `step-${r.step}` : undefined}
                class={r.step ? undefined : 'attempt'}
                data-ledger={l?.id}
                data-outcome={l?.outcome ?? 'ok'}
              >
                <td class="num">{r.step ? <a href={`#msg-${r.step}`}>{r.step}</a> : '—'}</td>
                <td>
                  <time datetime={at} title={utc(at)}>
                    {offset(r.at - start)}
                  </time>
                </td>
                <td class="opt">{r.kind}</td>
                <td>{r.name}</td>
                <td class="opt num">{l ? num(l.tokens.input) : '—'}</td>
                <td class="opt num">{l ? num(cacheWrite(l.tokens)) : '—'}</td>
                <td class="opt num">{l ? num(l.tokens.cacheRead) : '—'}</td>
                <td class="opt num">{l ? num(l.tokens.output) : '—'}</td>
                <td class="num">{l ? usd(l.cost) : '—'}</td>
                <td class="opt num">
                  {l?.cacheHitRate === undefined ? '—' : `${Math.round(l.cacheHitRate * 100)}%`}
                </td>
                <td class="opt num">{l ? latency(l.latencyMs) : '—'}</td>
                <td>
                  {l ? (
                    <span class={`outcome ${l.outcome}`}>
                      {l.outcome}
                      {l.code ? ` (${l.code})` : ''}
                    </span>
                  ) : (
                    <span class="muted">no ledger entry</span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row" colspan={4}>
              Total ({rows.length} {rows.length === 1 ? 'call' : 'calls'})
            </th>
            <td class="opt num">{num(total.input)}</td>
            <td class="opt num">{num(total.write)}</td>
            <td class="opt num">{num(total.read)}</td>
            <td class="opt num">{num(total.output)}</td>
            <td class="num">{usd(total.cost)}</td>
            <td class="opt" colspan={3} />
          </tr>
        </tfoot>
      </table>
    </div>
  );
}
