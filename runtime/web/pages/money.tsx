import { Hono } from 'hono';
import type { Web, WebEnv } from '../app.tsx';

/** Budgets, kill switches, spend and keys (in progress). */
export function moneyPages(_web: Web): Hono<WebEnv> {
  return new Hono<WebEnv>();
}
