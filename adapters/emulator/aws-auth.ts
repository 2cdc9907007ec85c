/**
 * SigV4 verification for the emulator's Bedrock face: the signature a client sent is recomputed
 * from the request as received (method, encoded path, query, the headers it says it signed, the
 * body) with the emulator's secret, and compared. Faults are Bedrock's own answers (403 with
 * `x-amzn-ErrorType`): no Authorization → `MissingAuthenticationTokenException`, an unknown
 * access key → `UnrecognizedClientException`, a signature that does not match (wrong secret,
 * altered body, wrong service) → `InvalidSignatureException`. The clock skew check AWS applies
 * (15 minutes) is left out: the emulator's clock is often a test's fixed past date.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

/** The AWS credentials the emulator's Bedrock face accepts. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** A Bedrock error answer (status, `x-amzn-ErrorType`, `{"message"}`). */
export class BedrockFault extends Error {
  constructor(
    readonly status: number,
    readonly errorType: string,
    message: string,
  ) {
    super(message);
    this.name = 'BedrockFault';
  }
}

const AUTH =
  /^AWS4-HMAC-SHA256\s+Credential=([^/\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;:_.-]+),\s*Signature=([0-9a-f]{64})$/;

const MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

/** `20261202T134118Z` → Date. */
function amzDate(v: string | null): Date | undefined {
  const m = v && /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  return m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : undefined;
}

/**
 * Verifies a request's SigV4 signature for service `bedrock`; returns the signing region.
 * Throws a {@link BedrockFault} as Bedrock answers.
 */
export async function verifySigV4(raw: Request, body: Uint8Array, creds: AwsCredentials): Promise<string> {
  const auth = raw.headers.get('authorization');
  if (!auth)
    throw new BedrockFault(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
  const m = AUTH.exec(auth.trim());
  if (!m) throw new BedrockFault(403, 'InvalidSignatureException', 'Authorization header is malformed');
  const [, keyId, , region, service, signedList, signature] = m;
  if (keyId !== creds.accessKeyId) {
    throw new BedrockFault(
      403,
      'UnrecognizedClientException',
      'The security token included in the request is invalid.',
    );
  }
  if (service !== 'bedrock') {
    throw new BedrockFault(
      403,
      'InvalidSignatureException',
      `Credential should be scoped to correct service: 'bedrock'.`,
    );
  }
  const date = amzDate(raw.headers.get('x-amz-date'));
  if (!date) throw new BedrockFault(403, 'InvalidSignatureException', 'x-amz-date: missing or malformed');
  const signed = signedList!.split(';');
  const claimed = raw.headers.get('x-amz-content-sha256');
  if (
    claimed &&
    claimed !== 'UNSIGNED-PAYLOAD' &&
    claimed !== createHash('sha256').update(body).digest('hex')
  ) {
    throw new BedrockFault(
      400,
      'InvalidSignatureException',
      'The provided x-amz-content-sha256 header does not match what was computed.',
    );
  }
  const url = new URL(raw.url);
  const headers: Record<string, string> = {};
  for (const name of signed) {
    // Over HTTP/2 the AWS SDK signs the `:authority` pseudo-header: the URL's host.
    const v = name === ':authority' ? url.host : raw.headers.get(name);
    if (v === null) throw new BedrockFault(403, 'InvalidSignatureException', MISMATCH);
    headers[name] = v;
  }
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const signer = new SignatureV4({
    service: 'bedrock',
    region: region!,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    sha256: Sha256,
    uriEscapePath: true,
    applyChecksum: false,
  });
  const out = await signer.sign(
    {
      method: raw.method,
      protocol: url.protocol,
      hostname: url.hostname,
      path: url.pathname,
      query,
      headers,
      body,
    },
    { signingDate: date, signableHeaders: new Set(signed) },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(out.headers.authorization))?.[1] ?? '';
  if (expected.length !== 64 || !timingSafeEqual(Buffer.from(expected), Buffer.from(signature!))) {
    throw new BedrockFault(403, 'InvalidSignatureException', MISMATCH);
  }
  return region!;
}
