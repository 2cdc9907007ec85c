import { Hono } from 'hono';
import type { Services } from '../../compose.ts';
import { Refusal } from '../../gateway/refusal.ts';
import { Metrics } from '../../observability/metrics.ts';

/**
 * `GET /metrics`, the Prometheus text format. Unless `metrics.public` is set it needs an operator
 * token of any role (viewer is enough) as a Bearer token, which Prometheus sends with
 * `authorization: { credentials: … }` in its scrape config.
 */
export function metricsRoute(rt: Services): Hono {
  const app = new Hono();
  app.get('/metrics', async (c) => {
    const m = rt.metrics instanceof Metrics ? rt.metrics : undefined;
    if (!m)
      return c.json(new Refusal('not_found', 'metrics are not collected in this process').envelope(), 404);
    if (!m.settings.public) {
      const auth = c.req.header('authorization');
      const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
      if (!rt.operatorSetup.registry.authenticate(token)) {
        const r = new Refusal(
          'unauthenticated',
          'unauthenticated: /metrics needs an operator token (any role) as "Authorization: Bearer <token>", or metrics.public: true',
        );
        return c.json(r.envelope(), 401, { 'www-authenticate': 'Bearer' });
      }
    }
    return c.body(await m.scrape(), 200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
  });
  return app;
}
