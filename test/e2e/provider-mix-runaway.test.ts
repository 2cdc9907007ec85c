import { AnthropicBedrock } from '@anthropic-ai/bedrock-sdk';
import Anthropic from '@anthropic-ai/sdk';
import { AnthropicVertex } from '@anthropic-ai/vertex-sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, type Harness, startHarness } from '../helpers/harness.ts';

type Entry = Record<string, any>;

const CEILING = 50_000; // $0.05
const CALLS = 150;
const ASK = 'Keep going [[emulator:output_tokens=300]]';

/**
 * The runaway check across the provider mix: 150 concurrent calls against one $0.05 seat, spread
 * over every face at once (Anthropic Messages, OpenAI chat with a GPT model and with a Claude
 * model, Bedrock, Vertex). One admission whatever the wire format: the seat never passes its ceiling, and
 * what the ledger charged equals what the emulated providers billed, to the µ$.
 */
for (const backend of ['embedded', 'redis'] as Backend[]) {
  describe(`the runaway check over every face (${backend})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ backend });
    });
    afterAll(async () => {
      await h?.close();
    });

    it('holds the ceiling with zero overshoot, and the ledger equals the bills', async () => {
      const { key, id } = await h.client({ team: 'mix-runaway', seat: 'runaway' });
      const set = await h.api('POST', '/api/budgets/seat:runaway/ceiling', {
        amount: String(CEILING / 1e6),
        reason: 'runaway check',
      });
      expect(set.status).toBe(200);
      const billBefore = h.rt.emulator!.billing.total();
      const anthropic = new Anthropic({ baseURL: h.url, apiKey: key, maxRetries: 0 });
      const openai = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: key, maxRetries: 0 });
      const vertex = new AnthropicVertex({
        baseURL: `${h.url}/vertex`,
        region: 'global',
        projectId: 'acme',
        accessToken: key,
        maxRetries: 0,
        authClient: {
          getRequestHeaders: async () => new Headers({ authorization: `Bearer ${key}` }),
        } as never,
      });
      const bedrock = new AnthropicBedrock({
        baseURL: `${h.url}/bedrock`,
        awsRegion: 'us-east-1',
        apiKey: key,
        maxRetries: 0,
      });
      const faces: Array<() => Promise<unknown>> = [
        () =>
          bedrock.messages.create({
            model: 'global.anthropic.claude-sonnet-4-6',
            max_tokens: 400,
            messages: [{ role: 'user', content: ASK }],
          }),
        () =>
          anthropic.messages.create({
            model: 'claude-sonnet-4-6',
            max_tokens: 400,
            messages: [{ role: 'user', content: ASK }],
          }),
        () =>
          openai.chat.completions.create({
            model: 'gpt-5.4',
            max_completion_tokens: 400,
            messages: [{ role: 'user', content: ASK }],
          }),
        () =>
          openai.chat.completions.create({
            model: 'claude-sonnet-4-6',
            max_completion_tokens: 400,
            messages: [{ role: 'user', content: ASK }],
          }),
        () =>
          vertex.messages.create({
            model: 'claude-sonnet-4-6',
            max_tokens: 400,
            messages: [{ role: 'user', content: ASK }],
          }),
      ];
      // One call on each face first: each is admitted and served by its own provider.
      for (const face of faces) await face();
      const results = await Promise.allSettled(
        Array.from({ length: CALLS }, (_, i) => faces[i % faces.length]!()),
      );
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      const refused = results.filter(
        // A budget refusal: 429 on every face but Bedrock's, which answers 400 ServiceQuotaExceeded.
        (r) => r.status === 'rejected' && [429, 400].includes((r.reason as { status?: number }).status ?? 0),
      ).length;
      expect(ok).toBeGreaterThan(0);
      expect(refused).toBeGreaterThan(0);
      expect(ok + refused).toBe(CALLS);

      const seat = await h.api<{ budget: Entry }>('GET', '/api/budgets/seat:runaway');
      expect(seat.body.budget.spent_micros).toBeLessThanOrEqual(CEILING);
      expect(seat.body.budget.reserved_micros ?? 0).toBe(0);
      const ledger = (await h.api<{ entries: Entry[] }>('GET', '/api/ledger?limit=1000')).body.entries.filter(
        (e) => e.identity.keyId === id,
      );
      const charged = ledger.reduce((s, e) => s + e.cost, 0);
      expect(charged).toBe(seat.body.budget.spent_micros);
      expect(charged).toBe(h.rt.emulator!.billing.total() - billBefore);
      expect(ledger.filter((e) => e.outcome === 'ok')).toHaveLength(ok + faces.length);
      // Every face was served: one admission across wire formats and providers.
      expect(new Set(ledger.filter((e) => e.outcome === 'ok').map((e) => e.provider))).toEqual(
        new Set(['anthropic', 'openai', 'vertex', 'bedrock']),
      );
    });
  });
}
