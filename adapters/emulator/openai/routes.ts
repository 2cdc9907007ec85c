/**
 * The emulator's OpenAI face, under `/openai`: point the official SDK at `${url}/openai/v1` with
 * the emulator's API key. Every model call is billed with `provider: 'openai'` at the face's own
 * catalogue (`models.ts`); the organization costs API reads that part of the bill.
 */
import type { Hono } from 'hono';
import type { EmulatorState } from '../http.ts';
import { chatCompletions } from './chat.ts';
import { organizationCosts } from './costs.ts';
import { embeddings, listModels } from './embeddings.ts';
import { responsesCall } from './responses.ts';

/** Mounts the OpenAI routes on the emulator's app. */
export function openaiRoutes(app: Hono, state: EmulatorState): void {
  app.post('/openai/v1/chat/completions', (c) => chatCompletions(c.req.raw, state));
  app.post('/openai/v1/responses', (c) => responsesCall(c.req.raw, state));
  app.post('/openai/v1/embeddings', (c) => embeddings(c.req.raw, state));
  app.get('/openai/v1/models', (c) => listModels(c.req.raw, state));
  app.get('/openai/v1/models/:id', (c) =>
    listModels(c.req.raw, state, decodeURIComponent(c.req.param('id'))),
  );
  app.get('/openai/v1/organization/costs', (c) => organizationCosts(c.req.raw, state));
}
