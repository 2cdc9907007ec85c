import type { Family, Provider } from '../../adapters/provider.ts';
import type { BudgetSpec } from '../store/port.ts';

/**
 * The providers the call path can send a call to, by config name: the default one
 * (`anthropic`, whatever its kind) and the named ones (`bedrock`, `vertex`, `openai`, …). One
 * ledger, one set of budgets across them: a call is admitted and priced for the provider it goes
 * to, and a failover to the next is a new admission.
 */
export class ProviderSet {
  constructor(
    private readonly byName: ReadonlyMap<string, Provider>,
    readonly defaultName: string,
    /** Providers with a budget of their own (a committed spend), by name. */
    private readonly budgets: ReadonlyMap<string, BudgetSpec> = new Map(),
  ) {
    if (!byName.has(defaultName)) throw new Error(`no provider named ${defaultName}`);
  }

  /** The budget a provider's calls are also admitted against (`provider:<name>`), if it has one. */
  budgetOf(name: string): BudgetSpec | undefined {
    return this.budgets.get(name);
  }

  get(name: string): Provider | undefined {
    return this.byName.get(name);
  }

  get default(): Provider {
    return this.byName.get(this.defaultName)!;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The first provider of a kind (a face asks for the provider of its own wire format). */
  ofKind(kind: string): string | undefined {
    for (const [name, p] of this.byName) if (p.kind === kind) return name;
    return undefined;
  }

  /** The first provider of a family (the OpenAI face's GPT calls). */
  ofFamily(family: Family): string | undefined {
    for (const [name, p] of this.byName) if ((p.family ?? 'anthropic') === family) return name;
    return undefined;
  }

  /** Closes every provider; the first failure is thrown after all were tried. */
  async close(): Promise<void> {
    const results = await Promise.allSettled([...this.byName.values()].map((p) => p.close()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}

/**
 * The price rows a provider's calls are priced at: its kind's own (bedrock, vertex, openai),
 * else Anthropic's list (`undefined`) — the emulator bills at Anthropic's list like Anthropic.
 */
export function priceKind(p: Provider): string | undefined {
  return p.kind === 'anthropic' || p.kind === 'emulator' ? undefined : p.kind;
}
