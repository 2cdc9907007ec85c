import { roleAtLeast } from '../../../auth/operators.ts';
import type { ApprovalView } from '../../views/approvals.ts';
import { ActionForm, type PageContext, ReasonField } from '../layout.tsx';

/**
 * What the inbox and a run's page share about a pending item: the four decisions (approve;
 * extend, deny or kill behind a disclosure), the request the run was given (its first user
 * message and its input), and the hint a viewer gets instead of buttons.
 */

const APPROVE_REASONS = ['looks right, carry on', 'within policy', 'checked with the requester'];
const DENY_REASONS = ['not within policy', 'looping without progress', 'needs a different approach'];
const KILL_REASONS = ['runaway', 'wrong input', 'no longer needed'];

export const canDecide = (page: PageContext) => roleAtLeast(page.operator.role, 'operator');

/**
 * The decision forms of a pending item. `back` is where the answer lands (the page the forms
 * are on); without it, the Referer. `kill: false` leaves the kill out (a run's page has its own).
 */
export function DecisionForms(props: {
  item: ApprovalView;
  page: PageContext;
  back?: string;
  kill?: boolean;
}) {
  const { item, page, back } = props;
  const kill = props.kill ?? true;
  const base = `/approvals/${encodeURIComponent(item.id)}`;
  const Back = () => (back ? <input type="hidden" name="back" value={back} /> : null);
  return (
    <div class="actions">
      <ActionForm action={`${base}/approve`} page={page}>
        <Back />
        <ReasonField id={`a-${item.id}`} choices={APPROVE_REASONS} />
        <button type="submit" class="primary">
          Approve
        </button>
      </ActionForm>
      <details class="decide" data-keep={item.id}>
        <summary>{kill ? 'Extend, deny or kill' : 'Extend or deny'}</summary>
        <ActionForm action={`${base}/extend`} page={page}>
          <Back />
          <label>
            <span>Add spend</span>
            <input name="spend" placeholder="+$1.00" inputmode="decimal" size={8} />
          </label>
          <label>
            <span>Add time</span>
            <input name="time" placeholder="+10m" size={6} />
          </label>
          <ReasonField id={`e-${item.id}`} choices={['worth a bit more', 'nearly done']} />
          <button type="submit">Extend</button>
        </ActionForm>
        <ActionForm action={`${base}/deny`} page={page}>
          <Back />
          <ReasonField id={`d-${item.id}`} choices={DENY_REASONS} />
          <button type="submit">Deny</button>
        </ActionForm>
        {kill ? (
          <ActionForm
            action={`${base}/kill`}
            page={page}
            confirm={`Kill run ${item.run} (${item.workflow})? It stops at once and cannot be resumed.`}
          >
            <Back />
            <ReasonField id={`k-${item.id}`} choices={KILL_REASONS} />
            <button type="submit" class="danger">
              Kill
            </button>
          </ActionForm>
        ) : null}
      </details>
    </div>
  );
}

/** Said to a read-only operator where the decision buttons would be. */
export function ViewerHint(props: { page: PageContext; what: string }) {
  const { operator } = props.page;
  return (
    <p class="hint" role="note" data-viewer-hint>
      You are logged in as <strong>{operator.name}</strong> with the <strong>{operator.role}</strong> role:
      you can see {props.what}, but deciding needs the operator role. Ask an operator or an admin, or log in
      with an operator token.
    </p>
  );
}

/** The request the run was given: the first user message and the input, always in view. */
export function RunRequest(props: { item: ApprovalView }) {
  const { firstUserMessage, inputJson } = props.item;
  if (firstUserMessage === null && inputJson === null) return null;
  return (
    <dl class="request">
      {firstUserMessage !== null ? (
        <>
          <dt>Asked</dt>
          <dd>
            <pre class="ask" data-first-message>
              {firstUserMessage}
            </pre>
          </dd>
        </>
      ) : null}
      {inputJson !== null ? (
        <>
          <dt>Input</dt>
          <dd>
            <code data-input>{inputJson}</code>
          </dd>
        </>
      ) : null}
    </dl>
  );
}
