import { Hono } from 'hono';
import { roleAtLeast } from '../../../auth/operators.ts';
import { SCOPE_KINDS } from '../../../identity.ts';
import type { KillSwitchesResponse, KillSwitchView } from '../../views/kill-switches.ts';
import type { Web, WebEnv } from '../app.tsx';
import { ActionForm, Layout, type PageContext, ReasonField } from '../layout.tsx';
import { enc, str, Time } from './parts.tsx';

/**
 * Kill switches: the global one, one per scope, and the switches on, each with its lift. Flipping
 * and lifting go through the operator API (operator role, audited).
 */

const KILL_REASONS = ['runaway spend', 'provider incident', 'security incident', 'wrong prompt shipped'];
const LIFT_REASONS = ['resolved', 'false alarm', 'fix deployed'];
const KILL_KINDS = SCOPE_KINDS.filter((k) => k !== 'global');

export function killSwitchPages(web: Web): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  app.get('/kill-switches', async (c) => {
    const { kill_switches: kills } = await web.get<KillSwitchesResponse>(c, '/api/kill-switches');
    return c.html(<KillSwitchesPage page={c.get('page')} kills={kills} />);
  });

  app.post('/kill-switches', async (c) => {
    web.require(c, 'operator');
    const form = await c.req.parseBody();
    const scope = str(form, 'scope') || `${str(form, 'kind')}:${str(form, 'key')}`;
    return web.act(
      c,
      'POST',
      '/api/kill-switches',
      { scope, reason: str(form, 'reason') },
      `Kill switch on ${scope} is ON: calls there are refused`,
      '/kill-switches',
    );
  });

  app.post('/kill-switches/:scope/lift', async (c) => {
    web.require(c, 'operator');
    const form = await c.req.parseBody();
    const scope = c.req.param('scope');
    return web.act(
      c,
      'POST',
      `/api/kill-switches/${enc(scope)}/lift`,
      { reason: str(form, 'reason') },
      `Kill switch on ${scope} lifted`,
      '/kill-switches',
    );
  });
  return app;
}

function KillSwitchesPage(props: { page: PageContext; kills: KillSwitchView[] }) {
  const { page, kills } = props;
  const canFlip = roleAtLeast(page.operator.role, 'operator');
  return (
    <Layout title="Kill switches" active="/kill-switches" page={page}>
      <p>
        A kill switch refuses every model and tool call in its scope, on every replica, from the next request
        on. Running calls finish; their runs stop at their next call.
      </p>
      <GlobalSwitch page={page} global={kills.find((k) => k.scope === 'global')} canFlip={canFlip} />
      {canFlip ? (
        <KillScope page={page} />
      ) : (
        <p class="muted">Flipping or lifting a kill switch needs the operator role.</p>
      )}

      <h2 id="on">Switches on</h2>
      <SwitchesOn page={page} kills={kills} canFlip={canFlip} />
    </Layout>
  );
}

function GlobalSwitch(props: { page: PageContext; global: KillSwitchView | undefined; canFlip: boolean }) {
  const { page, global, canFlip } = props;
  return (
    <section class={`global-switch${global ? ' on' : ''}`} aria-labelledby="global">
      <h2 id="global">Global</h2>
      {global ? (
        <p class="state-line" role="status">
          <strong>GLOBAL kill switch is ON</strong>: every call is refused. Flipped by {global.actor}{' '}
          <Time at={global.at} relative /> — {global.reason}
        </p>
      ) : (
        <p class="state-line">Off: calls are admitted by their budgets.</p>
      )}
      {canFlip && !global ? (
        <ActionForm
          action="/kill-switches"
          page={page}
          confirm="Refuse every model call on every replica?"
          class="inline"
        >
          <input type="hidden" name="scope" value="global" />
          <ReasonField id="global-kill" choices={KILL_REASONS} />
          <button type="submit" class="big-red">
            Stop everything
          </button>
        </ActionForm>
      ) : null}
      {canFlip && global ? (
        <ActionForm
          action="/kill-switches/global/lift"
          page={page}
          confirm="Lift the GLOBAL kill switch? Calls are admitted again."
          class="inline"
        >
          <ReasonField id="global-lift" choices={LIFT_REASONS} />
          <button type="submit" class="primary">
            Lift the global switch
          </button>
        </ActionForm>
      ) : null}
    </section>
  );
}

function KillScope(props: { page: PageContext }) {
  const { page } = props;
  return (
    <section aria-labelledby="kill-scope">
      <h2 id="kill-scope">Kill one scope</h2>
      <ActionForm
        action="/kill-switches"
        page={page}
        confirm="Refuse every model call in this scope on every replica?"
        class="inline"
      >
        <label>
          <span>Kind</span>
          <select name="kind" required>
            {KILL_KINDS.map((k) => (
              <option value={k}>{k}</option>
            ))}
          </select>
        </label>
        <label>
          <span>Key (team name, seat, workflow or run id)</span>
          <input
            name="key"
            required
            pattern="[A-Za-z0-9][A-Za-z0-9._@\-]{0,127}"
            autocomplete="off"
            size={16}
          />
        </label>
        <ReasonField id="scope-kill" choices={KILL_REASONS} />
        <button type="submit" class="danger">
          Kill scope
        </button>
      </ActionForm>
    </section>
  );
}

function SwitchesOn(props: { page: PageContext; kills: KillSwitchView[]; canFlip: boolean }) {
  const { page, kills, canFlip } = props;
  return kills.length ? (
    <div class="scroll">
      <table aria-labelledby="on" class="kills">
        <thead>
          <tr>
            <th scope="col">Scope</th>
            <th scope="col">Flipped by</th>
            <th scope="col">When</th>
            <th scope="col">Why</th>
            {canFlip ? <th scope="col">Lift</th> : null}
          </tr>
        </thead>
        <tbody>
          {kills.map((k) => (
            <tr data-scope={k.scope}>
              <th scope="row">{k.scope}</th>
              <td>{k.actor}</td>
              <td>
                <Time at={k.at} relative />
              </td>
              <td>{k.reason}</td>
              {canFlip ? (
                <td>
                  <ActionForm
                    action={`/kill-switches/${enc(k.scope)}/lift`}
                    page={page}
                    confirm={`Lift the kill switch on ${k.scope}? Calls are admitted again.`}
                    class="inline"
                  >
                    <ReasonField
                      id={`lift-${k.scope.replace(/[^A-Za-z0-9_-]/g, '-')}`}
                      choices={LIFT_REASONS}
                    />
                    <button type="submit">Lift</button>
                  </ActionForm>
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  ) : (
    <p class="muted">No kill switch is on.</p>
  );
}
