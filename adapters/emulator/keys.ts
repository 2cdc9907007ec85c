import { randomBytes } from 'node:crypto';

/** The default API key the emulator accepts. */
export const DEFAULT_API_KEY = 'sk-emulator-local';
/**
 * The Admin API key (for `/v1/organizations/*` and `/_emulator/*`) of an emulator made without
 * one: for tests and library use. Anything that listens for others — `chokepoint emulator`, the
 * in-process emulator of `chokepoint serve` — uses {@link randomAdminKey} instead, so no local
 * process can read its billing, script its replies or inject faults with a well-known key.
 */
export const DEFAULT_ADMIN_KEY = 'sk-ant-admin-emulator-local';

/** The access key id of the Bedrock face's AWS credentials, unless `aws.accessKeyId` says otherwise. */
export const DEFAULT_AWS_ACCESS_KEY_ID = 'AKIAEMULATOR000LOCAL';

/** A fresh admin key, random per start. */
export function randomAdminKey(): string {
  return `sk-ant-admin-emulator-${randomBytes(18).toString('base64url')}`;
}
