import type { ApprovalView } from '../../views/approvals.ts';
import type { AuditView } from '../../views/audit.ts';
import { StateBadge } from './parts.tsx';
import { reasonText, When } from './run-parts.tsx';

/** A run's suspensions with their decisions, and its audit log. */

export function Approvals(props: { items: ApprovalView[]; now: number }) {
  if (props.items.length === 0) return <p class="muted">This run has not waited for a human.</p>;
  return (
    <div class="scroll">
      <table class="approvals">
        <caption class="sr">The run's suspensions and what was decided</caption>
        <thead>
          <tr>
            <th scope="col">Suspension</th>
            <th scope="col">Summary</th>
            <th scope="col">State</th>
            <th scope="col">Decided by</th>
            <th scope="col" class="opt">
              Their reason
            </th>
            <th scope="col" class="opt">
              Opened
            </th>
            <th scope="col">Decided</th>
          </tr>
        </thead>
        <tbody>
          {props.items.map((a) => (
            <tr id={`approval-${a.id}`} data-approval={a.id}>
              <td class="id">
                {a.state === 'pending' ? <a href={`/#item-${a.id}`}>{a.id}</a> : <code>{a.id}</code>}
                <br />
                <small>{reasonText(a.reason)}</small>
              </td>
              <td>{a.summary}</td>
              <td>
                <StateBadge state={a.state} />
              </td>
              <td>{a.decision?.actor ?? <span class="muted">—</span>}</td>
              <td class="opt">{a.decision?.reason ?? <span class="muted">—</span>}</td>
              <td class="opt">
                <When at={a.createdAt} now={props.now} />
              </td>
              <td>
                {a.decision ? (
                  <When at={a.decision.at} now={props.now} />
                ) : (
                  <small>
                    expires <When at={a.expiresAt} now={props.now} />
                  </small>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** `suspended → killed` when an audit entry records a state change; nothing otherwise. */
function change(e: AuditView): string {
  const b = e.before as { state?: string } | undefined;
  const a = e.after as { state?: string } | undefined;
  if (b?.state && a?.state) return `${b.state} → ${a.state}`;
  if (a?.state) return `→ ${a.state}`;
  return '';
}

export function Audit(props: { entries: AuditView[]; now: number }) {
  if (props.entries.length === 0) return <p class="muted">No audit entries for this run.</p>;
  return (
    <div class="scroll">
      <table class="audit">
        <caption class="sr">Audit entries for this run, oldest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Action</th>
            <th scope="col">Actor</th>
            <th scope="col">Reason</th>
            <th scope="col" class="opt">
              Change
            </th>
          </tr>
        </thead>
        <tbody>
          {props.entries.map((e) => (
            <tr data-audit={e.action}>
              <td>
                <When at={e.at} now={props.now} />
              </td>
              <td>
                <code>{e.action}</code>
              </td>
              <td>{e.actor}</td>
              <td>{e.reason}</td>
              <td class="opt">{change(e)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
