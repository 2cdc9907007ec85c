import type { Emulator } from './emulator/index.ts';
import type { EmulatorProvider } from './emulator/provider.ts';
import type { Provider, ProviderFactory, ProviderSettings } from './provider.ts';

export type { Emulator };

/**
 * The providers Chokepoint can call, by `provider.kind`. Adding one is a folder beside
 * `anthropic/` implementing the Provider port, and one line here. Each is loaded when opened:
 * the config validates kinds against this list without loading any adapter.
 */
const PROVIDERS = new Map<string, () => Promise<ProviderFactory>>([
  ['anthropic', () => import('./anthropic/provider.ts').then((m) => m.anthropicProvider)],
  ['emulator', () => import('./emulator/provider.ts').then((m) => m.emulatorProvider)],
  ['bedrock', () => import('./bedrock/provider.ts').then((m) => m.bedrockProvider)],
]);

/** Makes a provider kind known (plugins, tests); the built-in ones are listed above. */
export function registerProvider(kind: string, factory: ProviderFactory): void {
  PROVIDERS.set(kind, async () => factory);
}

export function providerKinds(): string[] {
  return [...PROVIDERS.keys()];
}

/** Opens the provider the settings name; an unknown kind is an error naming the known ones. */
export async function openProvider(settings: ProviderSettings): Promise<Provider> {
  const load = PROVIDERS.get(settings.kind);
  if (!load) {
    throw new Error(
      `provider.kind: unknown provider ${JSON.stringify(settings.kind)} (known: ${providerKinds().join(', ')})`,
    );
  }
  return (await load())(settings);
}

/** The emulator behind a provider, if it is one: its URL and keys for tests and operators. */
export function emulatorOf(
  provider: Provider,
): { url: string; apiKey: string; adminKey?: string; reportsKey: string; instance?: Emulator } | undefined {
  if (provider.kind !== 'emulator') return undefined;
  const e = provider as EmulatorProvider;
  return {
    url: e.url,
    apiKey: e.apiKey,
    ...(e.adminKey ? { adminKey: e.adminKey } : {}),
    reportsKey: e.reportsKey,
    ...(e.instance ? { instance: e.instance } : {}),
  };
}
