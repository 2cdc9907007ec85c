import type { AuditEntry } from '../../store/port.ts';
import { type IsoTime, iso } from './format.ts';

/** An audit entry as `/api/audit` serves it. */
export type AuditView = Omit<AuditEntry, 'at'> & { at: IsoTime };

export const auditView = (e: AuditEntry): AuditView => ({ ...e, at: iso(e.at) });

/** `GET /api/audit`. */
export interface AuditResponse {
  entries: AuditView[];
}
