import { Hono } from 'hono';
import type { KeyCreatedResponse, KeysResponse, KeyView } from '../../views/keys.ts';
import type { Web, WebEnv } from '../app.tsx';
import { ActionForm, duration, Layout, type PageContext, ReasonField } from '../layout.tsx';
import { enc, errorText, str, Time } from './parts.tsx';

/**
 * API keys (admin): create one (the key is shown once, on the answer to the POST), list them,
 * revoke one. Everything goes through the operator API.
 */

const REVOKE_REASONS = ['leaked', 'no longer used', 'rotated', 'person left the team'];

interface KeyForm {
  team: string;
  env: string;
  seat: string;
  workflow: string;
  label: string;
  sessionTimeBox: string;
  reason: string;
}

const EMPTY_FORM: KeyForm = {
  team: '',
  env: '',
  seat: '',
  workflow: '',
  label: '',
  sessionTimeBox: '',
  reason: '',
};

export function keyPages(web: Web): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  app.get('/keys', async (c) => {
    web.require(c, 'admin');
    const { keys } = await web.get<KeysResponse>(c, '/api/keys');
    c.header('Cache-Control', 'no-store');
    return c.html(<KeysPage page={c.get('page')} keys={keys} form={EMPTY_FORM} />);
  });

  // The answer holds the key, once: rendered straight from the POST (never a redirect, so the
  // key is in no URL, history entry or Referer) and never cached.
  app.post('/keys', async (c) => {
    web.require(c, 'admin');
    const input = await c.req.parseBody();
    const form: KeyForm = {
      team: str(input, 'team'),
      env: str(input, 'env'),
      seat: str(input, 'seat'),
      workflow: str(input, 'workflow'),
      label: str(input, 'label'),
      sessionTimeBox: str(input, 'sessionTimeBox'),
      reason: str(input, 'reason'),
    };
    const body: Record<string, unknown> = { team: form.team, env: form.env, seat: form.seat };
    if (form.workflow) body.workflow = form.workflow;
    if (form.label) body.label = form.label;
    if (form.sessionTimeBox) body.sessionTimeBox = form.sessionTimeBox;
    if (form.reason) body.reason = form.reason;
    const operator = c.get('session').operator;
    const r = await web.call<KeyCreatedResponse>(operator, 'POST', '/api/keys', body);
    const { keys } = await web.get<KeysResponse>(c, '/api/keys');
    c.header('Cache-Control', 'no-store');
    const page = c.get('page');
    if (r.status >= 300) {
      return c.html(
        <KeysPage
          page={{ ...page, flash: { kind: 'error', text: errorText(r.body) } }}
          keys={keys}
          form={form}
        />,
        r.status === 403 ? 403 : 400,
      );
    }
    return c.html(
      <KeysPage
        page={{ ...page, flash: { kind: 'ok', text: `Key ${r.body.record.id} created` } }}
        keys={keys}
        form={EMPTY_FORM}
        created={r.body}
      />,
    );
  });

  app.post('/keys/:id/revoke', async (c) => {
    web.require(c, 'admin');
    const form = await c.req.parseBody();
    const id = c.req.param('id');
    return web.act(
      c,
      'POST',
      `/api/keys/${enc(id)}/revoke`,
      { reason: str(form, 'reason') },
      `Key ${id} revoked: calls with it are refused`,
      '/keys',
    );
  });
  return app;
}

function KeysPage(props: {
  page: PageContext;
  keys: KeyView[];
  form: KeyForm;
  created?: KeyCreatedResponse;
}) {
  const { page, keys, form, created } = props;
  const active = keys.filter((k) => !k.revokedAt).length;
  return (
    <Layout title="API keys" active="/keys" page={page}>
      {created ? <NewKey created={created} /> : null}

      <CreateKey page={page} form={form} />

      <h2 id="keys">Keys</h2>
      <h2 id="keys">Keys</h2>
      <p class="muted" data-count={keys.length}>
        {keys.length} keys, {active} active, newest first.
      </p>
      <KeysTable page={page} keys={keys} />
    </Layout>
  );
}

/** The key just made, this once. */
function NewKey(props: { created: KeyCreatedResponse }) {
  const { created } = props;
  return (
    <section class="new-key" aria-labelledby="new-key-h">
      <h2 id="new-key-h">New key for {created.record.seat}: shown once</h2>
      <p>
        <strong>Copy it now.</strong> This is the only time the key is shown: only its hash is kept, and this
        page is not cached. If it is lost, revoke it and create another.
      </p>
      <label>
        <span>API key ({created.record.id})</span>
        <input
          id="new-key"
          readonly
          value={created.key}
          autocomplete="off"
          spellcheck={false}
          autofocus
          class="key"
        />
      </label>
      <p class="muted">
        Use it as the Anthropic API key with Chokepoint as the base URL: <code>ANTHROPIC_BASE_URL</code> =
        this server, <code>ANTHROPIC_API_KEY</code> = the key above.
      </p>
    </section>
  );
}

function CreateKey(props: { page: PageContext; form: KeyForm }) {
  const { page, form } = props;
  return (
    <section aria-labelledby="create">
      <h2 id="create">Create a key</h2>
      <ActionForm action="/keys" page={page} class="inline key-form">
        <label>
          <span>Team</span>
          <input name="team" required value={form.team} size={12} autocomplete="off" />
        </label>
        <label>
          <span>Env</span>
          <input name="env" required value={form.env} size={8} autocomplete="off" />
        </label>
        <label>
          <span>Seat</span>
          <input name="seat" required value={form.seat} size={12} autocomplete="off" />
        </label>
        <label>
          <span>Workflow (optional)</span>
          <input name="workflow" value={form.workflow} size={12} autocomplete="off" />
        </label>
        <label>
          <span>Label (optional)</span>
          <input name="label" value={form.label} size={16} autocomplete="off" />
        </label>
        <label>
          <span>Session time box (optional)</span>
          <input
            name="sessionTimeBox"
            value={form.sessionTimeBox}
            placeholder="30m"
            size={6}
            autocomplete="off"
          />
        </label>
        <label>
          <span>Reason (optional)</span>
          <input name="reason" value={form.reason} size={24} placeholder="goes to the audit log" />
        </label>
        <button type="submit" class="primary">
          Create key
        </button>
      </ActionForm>
    </section>
  );
}

function KeysTable(props: { page: PageContext; keys: KeyView[] }) {
  const { page, keys } = props;
  return keys.length ? (
    <div class="scroll">
      <table aria-labelledby="keys" class="keys">
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Identity (team/env/seat)</th>
            <th scope="col" class="opt">
              Label
            </th>
            <th scope="col" class="opt">
              Session time box
            </th>
            <th scope="col" class="opt">
              Created
            </th>
            <th scope="col">Revoked</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <tr data-key={k.id} class={k.revokedAt ? 'revoked' : undefined}>
              <th scope="row">
                <code>{k.id}</code>
              </th>
              <td>
                {k.team}/{k.env}/{k.seat}
                {k.workflow ? <small> workflow {k.workflow}</small> : null}
              </td>
              <td class="opt">{k.label ?? '—'}</td>
              <td class="opt">{k.sessionTimeBox ? duration(k.sessionTimeBox) : '—'}</td>
              <td class="opt">
                <Time at={k.createdAt} />
              </td>
              <td>
                {k.revokedAt ? (
                  <span>
                    <span class="state revoked">revoked</span> <Time at={k.revokedAt} />
                  </span>
                ) : (
                  <details class="decide">
                    <summary>
                      Revoke<span class="sr"> {k.id}</span>…
                    </summary>
                    <ActionForm
                      action={`/keys/${enc(k.id)}/revoke`}
                      page={page}
                      confirm={`Revoke ${k.id} (${k.seat})? Calls with it are refused at once.`}
                      class="inline"
                    >
                      <ReasonField id={`revoke-${k.id}`} choices={REVOKE_REASONS} />
                      <button type="submit" class="danger">
                        Revoke
                      </button>
                    </ActionForm>
                  </details>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  ) : (
    <p class="muted">No keys yet.</p>
  );
}
