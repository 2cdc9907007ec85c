/**
 * Anthropic's Admin API reports (the real API or the emulator's copy): the cost report
 * (`/v1/organizations/cost_report`) and the messages usage report
 * (`/v1/organizations/usage_report/messages`), every page followed and merged into one
 * `{ data: [...] }`. A leaf: it knows the wire protocol and the Admin key, nothing of the ledger.
 * Not a hot path, so the global fetch is fine here.
 */

export interface AdminReportsOptions {
  baseUrl: string;
  /** An Admin API key (`sk-ant-admin…`); sent as x-api-key, never echoed in errors. */
  adminKey: string;
  timeoutMs?: number;
}

export class AdminReportError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'AdminReportError';
  }
}

export type ReportKind = 'cost' | 'usage';

const PATHS: Record<ReportKind, string> = {
  cost: 'v1/organizations/cost_report',
  usage: 'v1/organizations/usage_report/messages',
};

const GROUPS: Record<ReportKind, string[]> = {
  cost: ['description', 'workspace_id'],
  usage: ['model', 'api_key_id', 'workspace_id', 'context_window'],
};

/** Daily buckets of `[startingAt, endingAt)` (ISO times), every page merged. */
export async function fetchAdminReport(
  opts: AdminReportsOptions,
  kind: ReportKind,
  range: { startingAt: string; endingAt: string },
): Promise<{ data: unknown[]; has_more: false }> {
  const base = opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`;
  const data: unknown[] = [];
  let page: string | undefined;
  for (let n = 0; n < 100; n++) {
    const url = new URL(PATHS[kind], base);
    url.searchParams.set('starting_at', range.startingAt);
    url.searchParams.set('ending_at', range.endingAt);
    url.searchParams.set('bucket_width', '1d');
    for (const g of GROUPS[kind]) url.searchParams.append('group_by[]', g);
    if (page) url.searchParams.set('page', page);
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { 'x-api-key': opts.adminKey, 'anthropic-version': '2023-06-01' },
        signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new AdminReportError(
        `could not reach ${url.origin} for the ${kind} report: ${(err as Error).message}`,
      );
    }
    const text = await res.text();
    let body: { data?: unknown; has_more?: unknown; next_page?: unknown; error?: { message?: unknown } };
    try {
      body = JSON.parse(text);
    } catch {
      throw new AdminReportError(
        `the ${kind} report answered ${res.status} with a body that is not JSON`,
        res.status,
      );
    }
    if (!res.ok) {
      const why = typeof body.error?.message === 'string' ? body.error.message : `HTTP ${res.status}`;
      throw new AdminReportError(
        `the provider refused the ${kind} report (${res.status}): ${why}`,
        res.status,
      );
    }
    if (!Array.isArray(body.data))
      throw new AdminReportError(`the ${kind} report has no "data" array`, res.status);
    data.push(...body.data);
    if (body.has_more !== true || typeof body.next_page !== 'string') return { data, has_more: false };
    page = body.next_page;
  }
  throw new AdminReportError(`the ${kind} report has more than 100 pages`);
}
