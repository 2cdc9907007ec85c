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
  ['openai', () => import('./openai/provider.ts').then((m) => m.openaiProvider)],
  ['vertex', () => import('./vertex/provider.ts').then((m) => m.vertexProvider)],
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

/**
 * The other faces of an emulator provider, as provider settings: the real Bedrock, Vertex and
 * OpenAI adapters pointed at the emulator's own `/bedrock`, `/vertex` and `/openai` faces with
 * its credentials, so a default install serves every wire format offline and the tests drive
 * the real adapters (SigV4 signing, event-stream decoding). Only kinds registered here.
 */
export function emulatorSiblings(
  provider: Provider,
): Array<{ name: string; kind: string; baseUrl: string; apiKey?: string; options: Record<string, unknown> }> {
  const e = emulatorOf(provider);
  if (!e) return [];
  const aws = (provider as { awsCredentials?: { accessKeyId: string; secretAccessKey: string } })
    .awsCredentials;
  const out = [
    {
      name: 'bedrock',
      kind: 'bedrock',
      baseUrl: `${e.url}/bedrock`,
      options: { region: 'us-east-1', profile: 'us', ...(aws ?? {}) },
    },
    {
      name: 'vertex',
      kind: 'vertex',
      baseUrl: `${e.url}/vertex`,
      options: { project: 'chokepoint-emulator', region: 'global', accessToken: e.apiKey },
    },
    { name: 'openai', kind: 'openai', baseUrl: `${e.url}/openai`, apiKey: e.apiKey, options: {} },
  ];
  return out.filter((s) => PROVIDERS.has(s.kind) && (s.kind !== 'bedrock' || aws));
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
