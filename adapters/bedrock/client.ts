import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { Upstream, type UpstreamResponse } from '../http/upstream.ts';
import { ProviderError } from '../provider.ts';

/**
 * A SigV4-signing HTTP client for Bedrock Runtime, sending through the adapters' one HTTP client
 * (adapters/http/upstream.ts): bytes in and out. Credentials are static ones, or the standard Node chain (environment,
 * SSO/profile, web identity, container, IMDS), resolved on the first call and refreshed by the
 * chain's own memoisation before they expire.
 */
export interface BedrockClientOptions {
  /** `https://bedrock-runtime.{region}.amazonaws.com`, or any base URL with a path prefix. */
  baseUrl: string;
  /** The signing region (the credential scope). */
  region: string;
  credentials?: AwsCredentialIdentity;
  timeoutMs: number;
  maxSockets?: number;
}

export class BedrockClient {
  private readonly url: URL;
  private readonly upstream: Upstream;
  private readonly signer: SignatureV4;

  constructor(readonly opts: BedrockClientOptions) {
    this.url = new URL(opts.baseUrl.replace(/\/+$/, ''));
    this.upstream = new Upstream({ name: 'Bedrock', timeoutMs: opts.timeoutMs, maxSockets: opts.maxSockets });
    const credentials: AwsCredentialIdentityProvider = opts.credentials
      ? async () => opts.credentials!
      : defaultProvider();
    this.signer = new SignatureV4({
      service: 'bedrock',
      region: opts.region,
      credentials,
      sha256: Sha256,
      uriEscapePath: true,
    });
  }

  /**
   * Signs and sends `method path` (path under the base URL, already URL-encoded, e.g.
   * `/model/us.anthropic.claude-opus-5-5/invoke`); resolves with the response head as soon as
   * it arrives. `signal` aborts (kill, time box); no bytes for `timeoutMs` is a timeout.
   */
  async request(
    method: string,
    path: string,
    body: Buffer | undefined,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<UpstreamResponse> {
    if (signal?.aborted) throw new ProviderError('aborted before the call', 'aborted');
    const fullPath = `${this.url.pathname === '/' ? '' : this.url.pathname}${path}`;
    const unsigned = {
      method,
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      ...(this.url.port ? { port: Number(this.url.port) } : {}),
      path: fullPath,
      query: {},
      headers: {
        host: this.url.host,
        ...headers,
        ...(body ? { 'content-length': String(body.length) } : {}),
      },
      ...(body ? { body } : {}),
    };
    let signed: { headers: Record<string, string> };
    try {
      signed = await this.signer.sign(unsigned);
    } catch (err) {
      throw new ProviderError(`AWS credentials unavailable: ${(err as Error).message}`, 'network');
    }
    return this.upstream.send({
      origin: this.url.origin,
      method,
      path: fullPath,
      headers: signed.headers,
      body,
      signal,
    });
  }

  close(): void {
    this.upstream.close();
  }
}
