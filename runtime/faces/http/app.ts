import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import type { Services } from '../../compose.ts';
import { Refusal } from '../../gateway/refusal.ts';
import { approvalsApi } from '../api/approvals.ts';
import { apiError, type Env, requireOperator } from '../api/common.ts';
import { keysApi } from '../api/keys.ts';
import { moneyApi } from '../api/money.ts';
import { pricesApi } from '../api/prices.ts';
import { reconcileApi } from '../api/reconcile.ts';
import { runsApi } from '../api/runs.ts';
import { bedrockHandler } from '../gateway/bedrock.ts';
import { gatewayHandler } from '../gateway/http.ts';
import { vertexHandler } from '../gateway/vertex.ts';
import { mcpHttp } from '../mcp/http.ts';
import { webApp } from '../web/app.tsx';
import type { AppHandler } from './listen.ts';
import { metricsRoute } from './metrics-route.ts';

/**
 * The HTTP faces of the runtime. Hono serves the operator API, the inbox and health; the
 * gateway's hot path (/v1/messages) is a plain node:http handler so that it can forward bytes
 * without re-serialising them, and so is /mcp (the MCP streamable HTTP transport).
 */
export function createHono(rt: Services): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.route('/', metricsRoute(rt));
  const api = new Hono<Env>();
  api.use('*', requireOperator(rt));
  api.route('/', moneyApi(rt));
  api.route('/', pricesApi(rt));
  api.route('/', keysApi(rt));
  api.route('/', runsApi(rt));
  api.route('/', approvalsApi(rt));
  api.route('/', reconcileApi(rt));
  // Unknown API paths are API 404s (JSON), never the inbox's pages.
  api.all('*', (c) =>
    c.json(new Refusal('not_found', `no route ${c.req.method} ${c.req.path}`).envelope(), 404),
  );
  api.onError((err, c) => apiError(err, c));
  app.route('/api', api);
  app.notFound((c) =>
    c.json(new Refusal('not_found', `no route ${c.req.method} ${c.req.path}`).envelope(), 404),
  );
  app.get('/readyz', async (c) => {
    try {
      await rt.store.ping();
      return c.json({ ok: true, store: rt.config.store.backend, provider: rt.config.provider.kind });
    } catch (err) {
      // The detail is for the log, not for whoever asks (readyz needs no token).
      rt.log.warn('readyz: the store did not answer', { error: err });
      return c.json({ ok: false, store: rt.config.store.backend, error: 'the store did not answer' }, 503);
    }
  });
  // The inbox and control room: every other GET path (after the API and health routes).
  app.route('/', webApp(rt, app));
  return app;
}

export function createApp(rt: Services): AppHandler {
  const app = createHono(rt);
  const hono = getRequestListener(app.fetch);
  const gateway = gatewayHandler(rt, rt.keys);
  const vertex = vertexHandler(rt, rt.keys);
  const bedrock = bedrockHandler(rt, rt.keys);
  // The MCP server (streamable HTTP wants node's req/res); it acts through the API in-process.
  const mcp = mcpHttp(rt, app);
  // Every handler's failure ends here, whatever it was: logged, answered if it still can be (a
  // 500 in JSON), the connection closed otherwise. Never an unhandled rejection that takes the
  // process — gateway, API, inbox and MCP for everyone — down with it.
  const last = (req: IncomingMessage, res: ServerResponse) => (err: unknown) => {
    rt.log.error('request handler failed', { error: err, method: req.method, path: req.url });
    try {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(new Refusal('enforcement_unavailable', 'internal error').envelope()));
      } else res.destroy();
    } catch {
      res.destroy();
    }
  };
  const handler: AppHandler = (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    // Every /v1 path is the Anthropic face's: an unknown one is a JSON 404 in the Anthropic
    // envelope, never the inbox's login redirect.
    if (path.startsWith('/v1/') || path === '/v1') {
      gateway(req, res, path).catch(last(req, res));
      return;
    }
    if (path.startsWith('/bedrock/')) {
      bedrock(req, res, path).catch(last(req, res));
      return;
    }
    if (path.startsWith('/vertex/')) {
      vertex(req, res, path).catch(last(req, res));
      return;
    }
    if (path === '/mcp') {
      mcp.handle(req, res).catch(last(req, res));
      return;
    }
    Promise.resolve(hono(req, res)).catch(last(req, res));
  };
  // POST /v1/messages and its count_tokens on HTTP/1.1 are served without node:http's request and
  // response objects (runtime/faces/gateway/fast-h1.ts).
  handler.fast = {
    route: gateway.fast,
    options: {
      maxBodyBytes: rt.config.server.maxBodyBytes,
      failed: (err, req) =>
        rt.log.error('request handler failed', { error: err, method: req?.method, path: req?.url }),
    },
  };
  return handler;
}
