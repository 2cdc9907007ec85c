import {
  ErrorCode,
  McpError,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { scopesOf } from '../../identity.ts';
import { budgetUri, parseUri, type ResourceRef, readResource, runUri } from './resources.ts';
import type { ToolContext } from './tool.ts';
import { onRunChange } from './watch.ts';

/**
 * Resource subscriptions: a client subscribed to a run or a budget is told when it changes. A
 * run changing state in this process (on Redis, in any) and an approval opened or decided are
 * pushed at once; everything else (steps, spend) is caught by re-reading what is subscribed
 * every `pollMs`. Returns the function that stops watching.
 */
export function watchSubscriptions(ctx: ToolContext): () => void {
  const { rt, server } = ctx;
  const subscribed = new Map<string, string>(); // uri → fingerprint of what was last seen
  const fingerprint = async (ref: ResourceRef): Promise<string> => {
    if (ref.kind === 'run') {
      const r = await rt.runs?.get(ref.id);
      return r ? `${r.state}|${r.steps}|${r.suspensions}|${r.updatedAt}` : 'gone';
    }
    const b = await rt.store.getBudget(ref.scope);
    return b ? `${b.state}|${b.spent}|${b.reserved}|${b.ceiling}|${b.updatedAt}` : 'none';
  };
  const updated = (uri: string) => {
    server.server.sendResourceUpdated({ uri }).catch(() => {});
  };
  /** Re-reads a subscribed resource; tells the client if it changed (or at once with force). */
  const check = async (uri: string, force = false) => {
    const ref = parseUri(uri);
    if (!ref || !subscribed.has(uri)) return;
    const fp = await fingerprint(ref).catch(() => subscribed.get(uri)!);
    if (!subscribed.has(uri)) return;
    if (force || fp !== subscribed.get(uri)) {
      subscribed.set(uri, fp);
      updated(uri);
    }
  };

  server.server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    const uri = req.params.uri;
    const ref = parseUri(uri);
    if (!ref) {
      throw new McpError(
        ErrorCode.InvalidParams,
        `cannot subscribe to ${uri}: expected chokepoint://runs/<id> or chokepoint://budgets/<scope>`,
      );
    }
    // Only what this operator may read: the same check as reading it.
    await readResource(ctx, ref);
    subscribed.set(uri, await fingerprint(ref));
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscribed.delete(req.params.uri);
    return {};
  });

  // A run of this process changed state: its resource, and the budgets it spends from.
  const offRuns = onRunChange(rt, (r) => {
    if (subscribed.size === 0) return;
    void check(runUri(r.id));
    for (const scope of scopesOf(r.identity)) void check(budgetUri(scope));
  });
  // An approval item opened or was decided (in any process sharing the store): its run's resource.
  const offApprovals =
    rt.approvals?.store.subscribe((change) => {
      const dot = change.id.lastIndexOf('.');
      if (dot > 0) void check(runUri(change.id.slice(0, dot)), true);
    }) ?? (() => {});
  // Everything else (steps, spend, runs on other processes): re-read what is subscribed.
  let polling = false;
  const poll = setInterval(
    () => {
      if (polling || subscribed.size === 0) return;
      polling = true;
      void Promise.allSettled([...subscribed.keys()].map((uri) => check(uri))).finally(() => {
        polling = false;
      });
    },
    Math.max(ctx.pollMs, 250),
  );
  poll.unref();

  return () => {
    clearInterval(poll);
    offRuns();
    offApprovals();
    subscribed.clear();
  };
}
