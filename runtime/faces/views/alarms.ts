import type { Alarm } from '../../events.ts';
import { type IsoTime, iso } from './format.ts';

/** An alarm as `/api/alarms` serves it. */
export type AlarmView = Omit<Alarm, 'at'> & { at: IsoTime };

export const alarmView = (a: Alarm): AlarmView => ({ ...a, at: iso(a.at) });

/** `GET /api/alarms`. */
export interface AlarmsResponse {
  alarms: AlarmView[];
}
