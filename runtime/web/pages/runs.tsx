import { Hono } from 'hono';
import type { Web, WebEnv } from '../app.tsx';

/** Runs and the run detail page (in progress). */
export function runPages(_web: Web): Hono<WebEnv> {
  return new Hono<WebEnv>();
}
