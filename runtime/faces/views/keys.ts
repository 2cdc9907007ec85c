import type { ApiKey } from '../../auth/keys.ts';
import { type IsoTime, iso } from './format.ts';

/** A gateway API key as `/api/keys` serves it (never the secret; that is shown once, on create). */
export type KeyView = Omit<ApiKey, 'createdAt' | 'revokedAt'> & {
  createdAt: IsoTime;
  revokedAt: IsoTime | null;
};

export const keyView = (k: ApiKey): KeyView => ({
  ...k,
  createdAt: iso(k.createdAt),
  revokedAt: iso(k.revokedAt),
});

/** `GET /api/keys`. */
export interface KeysResponse {
  keys: KeyView[];
}

/**
 * `POST /api/keys`: the key (this once) and its record. The record of a key just made has no
 * `revokedAt` at all (the list shows `null`): kept as served.
 */
export interface KeyCreatedResponse {
  key: string;
  record: Omit<ApiKey, 'createdAt' | 'revokedAt'> & { createdAt: IsoTime };
}

export function createdKeyView(key: string, record: ApiKey): KeyCreatedResponse {
  const { revokedAt: _new, ...rest } = record;
  return { key, record: { ...rest, createdAt: iso(record.createdAt) } };
}

/** `POST /api/keys/:id/revoke`. */
export interface KeyRevokedResponse {
  key: KeyView;
}
