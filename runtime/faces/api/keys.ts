import { Hono } from 'hono';
import { KeyInputError, type KeySpec } from '../../auth/keys.ts';
import type { Services } from '../../compose.ts';
import { parseDuration } from '../../config/schema.ts';
import { invalidRequest, Refusal } from '../../gateway/refusal.ts';
import { createdKeyView, type KeysResponse, keyView } from '../views/keys.ts';
import { type Env, jsonBody, MAX_REASON_CHARS, requireRole, textField } from './common.ts';

/** API keys for the gateway: create (the key is in the answer, once), list, revoke. */
export function keysApi(rt: Services): Hono<Env> {
  const api = new Hono<Env>();

  api.get('/keys', async (c) => {
    requireRole(c, 'admin');
    const keys = await rt.keys.list();
    return c.json({ keys: keys.map(keyView) } satisfies KeysResponse);
  });

  api.post('/keys', async (c) => {
    const op = requireRole(c, 'admin');
    const body = await jsonBody(c);
    for (const f of ['workflow', 'label', 'driftPolicy', 'maxTokens'] as const) textField(body, f);
    const reason = textField(body, 'reason', MAX_REASON_CHARS);
    // Session time box and gap come as durations ("30m"); stored in ms.
    const spec = { ...body } as Record<string, unknown>;
    for (const f of ['sessionTimeBox', 'sessionGap'] as const) {
      if (body[f] === undefined) continue;
      const ms = typeof body[f] === 'string' ? parseDuration(body[f]) : undefined;
      if (ms === undefined || ms <= 0)
        throw invalidRequest(f, `expected a duration like "30m" or "2h", got ${JSON.stringify(body[f])}`);
      spec[f] = ms;
    }
    let created: Awaited<ReturnType<typeof rt.keys.create>>;
    try {
      created = await rt.keys.create(spec as unknown as KeySpec);
    } catch (err) {
      if (err instanceof KeyInputError)
        throw invalidRequest(err.field, err.message.slice(err.field.length + 2));
      throw err;
    }
    await rt.store.appendAudit({
      actor: op.name,
      action: 'key.create',
      target: `key:${created.record.id}`,
      after: created.record,
      reason: reason || 'key created',
    });
    return c.json(createdKeyView(created.key, created.record), 201);
  });

  api.post('/keys/:id/revoke', async (c) => {
    const op = requireRole(c, 'admin');
    const body = await jsonBody(c).catch(() => ({}) as Record<string, unknown>);
    const reason = textField(body, 'reason', MAX_REASON_CHARS);
    const k = await rt.keys.revoke(c.req.param('id'));
    if (!k) throw new Refusal('not_found', `no key ${JSON.stringify(c.req.param('id'))}`);
    await rt.store.appendAudit({
      actor: op.name,
      action: 'key.revoke',
      target: `key:${k.id}`,
      after: { revokedAt: k.revokedAt },
      reason: reason || 'key revoked',
    });
    return c.json({ key: keyView(k) });
  });

  return api;
}
