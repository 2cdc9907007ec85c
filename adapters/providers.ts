import { anthropicProvider } from './anthropic/provider.ts';
import type { Emulator } from './emulator/index.ts';
import { EmulatorProvider, emulatorProvider } from './emulator/provider.ts';
import type { Provider, ProviderFactory, ProviderSettings } from './provider.ts';

export type { Emulator };

/**
 * The providers Chokepoint can call, by `provider.kind`. Adding one is a folder beside
 * `anthropic/` implementing the Provider port, and one line here.
 */
const PROVIDERS = new Map<string, ProviderFactory>([
  ['anthropic', anthropicProvider],
  ['emulator', emulatorProvider],
]);

/** Makes a provider kind known (plugins, tests); the built-in ones are listed above. */
export function registerProvider(kind: string, factory: ProviderFactory): void {
  PROVIDERS.set(kind, factory);
}

export function providerKinds(): string[] {
  return [...PROVIDERS.keys()];
}

/** Opens the provider the settings name; an unknown kind is an error naming the known ones. */
export function openProvider(settings: ProviderSettings): Promise<Provider> {
  const factory = PROVIDERS.get(settings.kind);
  if (!factory) {
    throw new Error(
      `provider.kind: unknown provider ${JSON.stringify(settings.kind)} (known: ${providerKinds().join(', ')})`,
    );
  }
  return factory(settings);
}

/** The emulator behind a provider, if it is one: its URL and keys for tests and operators. */
export function emulatorOf(
  provider: Provider,
): { url: string; apiKey: string; adminKey?: string; instance?: Emulator } | undefined {
  if (!(provider instanceof EmulatorProvider)) return undefined;
  return {
    url: provider.url,
    apiKey: provider.apiKey,
    ...(provider.adminKey ? { adminKey: provider.adminKey } : {}),
    ...(provider.instance ? { instance: provider.instance } : {}),
  };
}
