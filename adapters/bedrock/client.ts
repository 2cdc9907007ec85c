import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { ProviderError } from '../provider.ts';

/**
 * A SigV4-signing HTTP client for Bedrock Runtime: pooled keep-alive sockets, no global fetch,
 * bytes in and out. Credentials are static ones, or the standard Node chain (environment,
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
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly send: typeof httpRequest;
  private readonly signer: SignatureV4;

  constructor(readonly opts: BedrockClientOptions) {
    this.url = new URL(opts.baseUrl.replace(/\/+$/, ''));
    const https = this.url.protocol === 'https:';
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 256, keepAliveMsecs: 30_000 };
    this.agent = https ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
    this.send = (https ? httpsRequest : httpRequest) as typeof httpRequest;
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
  ): Promise<IncomingMessage> {
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
    return new Promise((resolve, reject) => {
      const req = this.send(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port || undefined,
          method,
          path: fullPath,
          headers: signed.headers,
          agent: this.agent,
          signal,
        },
        resolve,
      );
      req.setTimeout(this.opts.timeoutMs, () => {
        req.destroy(new ProviderError(`no answer from Bedrock within ${this.opts.timeoutMs} ms`, 'timeout'));
      });
      req.on('error', (err) => {
        if (err instanceof ProviderError) reject(err);
        else if ((err as Error).name === 'AbortError') reject(new ProviderError('call aborted', 'aborted'));
        else reject(new ProviderError(`Bedrock unreachable: ${(err as Error).message}`, 'network'));
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
