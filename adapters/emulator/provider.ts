import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { AnthropicProvider } from '../anthropic/provider.ts';
import type { ProviderFactory } from '../provider.ts';
import {
  createEmulator,
  DEFAULT_ADMIN_KEY,
  DEFAULT_API_KEY,
  DEFAULT_AWS_ACCESS_KEY_ID,
  type Emulator,
  randomAdminKey,
} from './index.ts';

/**
 * The emulator as a provider: it speaks Anthropic's wire format, so it is the Anthropic adapter
 * pointed at it. Without a `baseUrl` it is started in this process, on a free loopback port, with
 * random API and admin keys (no other local process can use, script or read it with a well-known
 * key) and its bill kept in the data folder, so a reconciliation after a restart still sees it.
 */
export class EmulatorProvider extends AnthropicProvider {
  constructor(
    readonly url: string,
    readonly apiKey: string,
    timeoutMs: number,
    /** Set when it runs in this process. */
    readonly instance?: Emulator,
    private readonly stop?: () => Promise<void>,
  ) {
    super('emulator', { baseUrl: url, apiKey, timeoutMs });
  }

  /** The admin key of the in-process emulator (its billing, cost and usage reports). */
  get adminKey(): string | undefined {
    return this.instance?.adminKey;
  }

  /**
   * The key of its Admin API reports: the in-process one's random key, else the well-known default
   * of a standalone `chokepoint emulator`.
   */
  get reportsKey(): string {
    return this.instance?.adminKey ?? DEFAULT_ADMIN_KEY;
  }

  /**
   * The AWS credentials of its Bedrock face (`${url}/bedrock`): the in-process one's, else the
   * defaults of a standalone emulator (access key id `AKIAEMULATOR000LOCAL`, secret = API key).
   */
  get awsCredentials(): { accessKeyId: string; secretAccessKey: string } {
    return (
      this.instance?.awsCredentials ?? {
        accessKeyId: DEFAULT_AWS_ACCESS_KEY_ID,
        secretAccessKey: this.apiKey,
      }
    );
  }

  override async close(): Promise<void> {
    await super.close();
    await this.stop?.();
  }
}

export const emulatorProvider: ProviderFactory = async (s) => {
  if (s.baseUrl) return new EmulatorProvider(s.baseUrl, s.apiKey || DEFAULT_API_KEY, s.timeoutMs);
  const apiKey = `sk-emulator-${randomBytes(12).toString('hex')}`;
  const emulator = createEmulator({
    apiKey,
    adminKey: randomAdminKey(),
    billingFile: join(s.dataDir(), 'emulator-billing.jsonl'),
  });
  const l = await emulator.listen({ port: 0, host: '127.0.0.1' });
  s.warn('provider is the in-process EMULATOR: no real model is called, no real money is spent', {
    url: l.url,
  });
  return new EmulatorProvider(l.url, apiKey, s.timeoutMs, emulator, l.close);
};
