import type { KillSwitch } from '../../store/port.ts';
import { type IsoTime, iso } from './format.ts';

/** A kill switch as `/api/kill-switches` serves it. */
export type KillSwitchView = Omit<KillSwitch, 'at'> & { at: IsoTime };

export const killSwitchView = (k: KillSwitch): KillSwitchView => ({ ...k, at: iso(k.at) });

/** `GET /api/kill-switches`. */
export interface KillSwitchesResponse {
  kill_switches: KillSwitchView[];
}

/** `POST /api/kill-switches`. */
export interface KillSwitchSetResponse {
  kill_switch: KillSwitchView;
}

/** `POST /api/kill-switches/:scope/lift`. */
export interface KillSwitchLiftedResponse {
  lifted: boolean;
}
