/**
 * Server tools the emulated model "runs" itself: web search and web fetch (research §5; platform
 * docs web-search-tool / web-fetch-tool, Aug-2026 text; block shapes from @anthropic-ai/sdk 1.13
 * `ServerToolUseBlock`, `WebSearchToolResultBlock`, `WebFetchToolResultBlock`).
 *
 * A reply asks for N searches with `[[emulator:web_search=N]]` (or a rule's `webSearches`) and
 * N fetches with `[[emulator:web_fetch=N]]`; the request must declare a `web_search_*` /
 * `web_fetch_*` tool. Each call is a `server_tool_use` block followed by its result block. Calls
 * past the tool's `max_uses` get an error result with `error_code: "max_uses_exceeded"` and are
 * not counted (an errored search is not billed). Results are fed back to the model, so their
 * tokens count as (uncached) input. Usage reports `server_tool_use: {web_search_requests,
 * web_fetch_requests}`; each search is billed $10 / 1,000 (10,000 µ$), fetches carry no fee.
 * The fee is flat: whether the US-geo 1.1×, fast mode or the batch discount apply to it is not
 * documented (research §10.8; Google Cloud's Fable 5.2 page keeps searches at the standard rate
 * under fast mode), so none is applied.
 */
import { ApiError } from './errors.ts';
import { newId } from './ids.ts';
import type { Tool } from './request.ts';
import { canonicalJson, textTokens } from './tokens.ts';

/** µ$ per web search: $10 per 1,000 searches. */
export const WEB_SEARCH_MICROS = 10_000;

const DIRECT = { type: 'direct' } as const;

export interface ServerToolUseOut {
  type: 'server_tool_use';
  id: string;
  name: 'web_search' | 'web_fetch';
  input: Record<string, unknown>;
  caller: typeof DIRECT;
}
export interface ServerResultOut {
  type: 'web_search_tool_result' | 'web_fetch_tool_result';
  tool_use_id: string;
  content: unknown;
  caller: typeof DIRECT;
}

export interface ServerToolRun {
  blocks: (ServerToolUseOut | ServerResultOut)[];
  webSearchRequests: number;
  webFetchRequests: number;
  /** Tokens of the results, billed as input. */
  resultTokens: number;
}

const findTool = (tools: readonly Tool[], prefix: string) =>
  tools.find((t) => typeof t.type === 'string' && t.type.startsWith(prefix));

function noTool(kind: string): ApiError {
  return new ApiError(
    400,
    'invalid_request_error',
    `emulator directive: ${kind} needs a ${kind}_* server tool in the request's tools`,
  );
}

/** True when the request declares a web search or web fetch server tool. */
export function hasServerTools(tools: readonly Tool[] | undefined): boolean {
  return !!tools && (!!findTool(tools, 'web_search_') || !!findTool(tools, 'web_fetch_'));
}

/** The server tool calls of a reply. */
export function runServerTools(
  tools: readonly Tool[],
  searches: number,
  fetches: number,
  query: string,
): ServerToolRun {
  const run: ServerToolRun = { blocks: [], webSearchRequests: 0, webFetchRequests: 0, resultTokens: 0 };
  const q = query.trim().slice(0, 200) || 'emulated query';
  const calls = (kind: 'web_search' | 'web_fetch', n: number) => {
    if (n === 0) return;
    const tool = findTool(tools, `${kind}_`);
    if (!tool) throw noTool(kind);
    const maxUses = typeof tool.max_uses === 'number' ? tool.max_uses : Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const id = newId('srvtoolu_01');
      const url = `https://example.com/emulated/${kind}/${i + 1}`;
      const input = kind === 'web_search' ? { query: q } : { url };
      run.blocks.push({ type: 'server_tool_use', id, name: kind, input, caller: DIRECT });
      const used = kind === 'web_search' ? run.webSearchRequests : run.webFetchRequests;
      let content: unknown;
      if (used >= maxUses) {
        content = { type: `${kind}_tool_result_error`, error_code: 'max_uses_exceeded' };
      } else if (kind === 'web_search') {
        run.webSearchRequests++;
        content = [
          {
            type: 'web_search_result',
            url,
            title: `Emulated result ${i + 1} for ${q}`,
            encrypted_content: Buffer.from(`emulated:${q}:${i + 1}`).toString('base64'),
            page_age: null,
          },
        ];
      } else {
        run.webFetchRequests++;
        content = {
          type: 'web_fetch_result',
          url,
          retrieved_at: null,
          content: {
            type: 'document',
            source: { type: 'text', media_type: 'text/plain', data: `Emulated page ${i + 1}.` },
            title: `Emulated page ${i + 1}`,
            citations: null,
          },
        };
      }
      run.resultTokens += textTokens(canonicalJson(content));
      run.blocks.push({ type: `${kind}_tool_result`, tool_use_id: id, content, caller: DIRECT });
    }
  };
  calls('web_search', searches);
  calls('web_fetch', fetches);
  return run;
}
