import type { ApiKey } from '../auth/keys.ts';
import type { Identity } from '../identity.ts';
import {
  type ApprovalItem,
  type ApprovalStore,
  formatDuration,
  type SessionState,
  type SessionStore,
} from '../store/approvals.ts';
import { Refusal } from './refusal.ts';

/**
 * Session time boxes for outside agents calling /v1/messages. A key can carry a session time box
 * (and the idle gap that ends a session). A session is named by `x-chokepoint-session`, or, without
 * that header, runs from the key's first call until a gap in activity longer than the gap. Past
 * its box, calls are refused with 429 `time_box_exceeded` and an approval item (kind `session`)
 * is opened; approving it restarts the session's clock, extending it adds time, denying or
 * killing it keeps the session refused (a new session starts after the gap, or with a new name).
 */

/** Activity is written at most this often per session (the gap is minutes; this keeps calls cheap). */
const TOUCH_MS = 1_000;

export class SessionBoxes {
  constructor(
    private readonly now: () => number,
    private readonly sessions: SessionStore,
    private readonly approvals: ApprovalStore,
    private readonly timeoutMs: number,
  ) {}

  /** Throws 429 `time_box_exceeded` if the caller's session is past its box (and not approved on). */
  async check(key: ApiKey, identity: Identity): Promise<void> {
    const box = key.sessionTimeBox;
    if (!box) return;
    const gap = key.sessionGap ?? 30 * 60_000;
    const now = this.now();
    const name = identity.session ?? 'auto';
    const id = `${key.id}.${name}`;
    let s = await this.sessions.get(id);
    const idle = s ? now - s.lastAt : 0;
    if (
      !s ||
      (!identity.session && idle > gap && s.state !== 'waiting') ||
      (s.state === 'refused' && idle > gap)
    ) {
      s = {
        id,
        keyId: key.id,
        identity: { ...identity },
        startedAt: now,
        clockStart: now,
        lastAt: now,
        boxMs: box,
        state: 'active',
        suspensions: s?.suspensions ?? 0,
      };
      await this.sessions.put(s);
    }
    if (s.state === 'waiting') {
      const item = await this.approvals.get(`${s.id}.${s.suspensions}`);
      if (!item || item.state === 'pending') {
        throw this.refusal(s, item, 'waits for a human');
      }
      if (item.state === 'approved') s.clockStart = now;
      else if (item.state === 'extended') s.boxMs += item.decision?.addTime ?? 0;
      s.state = item.state === 'approved' || item.state === 'extended' ? 'active' : 'refused';
      s.lastAt = now;
      await this.sessions.put(s);
    }
    if (s.state === 'refused') throw this.refusal(s, undefined, 'was refused by a human');
    if (now - s.clockStart >= s.boxMs) {
      s.state = 'waiting';
      s.suspensions += 1;
      s.lastAt = now;
      await this.sessions.put(s);
      const { item } = await this.approvals.open(this.itemFor(s, now));
      throw this.refusal(s, item, 'reached its time box');
    }
    if (now - s.lastAt >= TOUCH_MS) {
      s.lastAt = now;
      await this.sessions.put(s);
    }
  }

  close(): Promise<void> {
    return this.sessions.close();
  }

  private refusal(s: SessionState, item: ApprovalItem | undefined, what: string): Refusal {
    const ran = formatDuration(this.now() - s.clockStart);
    return new Refusal(
      'time_box_exceeded',
      `time_box_exceeded: session ${s.id} ${what} (ran ${ran} of its ${formatDuration(s.boxMs)} time box)` +
        (item?.state === 'pending' ? `; approval ${item.id} is waiting in the inbox` : ''),
      {
        session: s.id,
        session_state: s.state,
        time_box_ms: s.boxMs,
        ...(item ? { approval: item.id } : {}),
      },
    );
  }

  private itemFor(s: SessionState, now: number): ApprovalItem {
    return {
      id: `${s.id}.${s.suspensions}`,
      kind: 'session',
      runId: s.id,
      workflow: s.identity.workflow ?? '(session)',
      version: '',
      identity: s.identity,
      reason: 'session_time_box',
      summary: `session time box: ran ${formatDuration(now - s.clockStart)} of ${formatDuration(s.boxMs)}`,
      detail: { session: s.id, keyId: s.keyId, elapsedMs: now - s.clockStart, timeBox: s.boxMs },
      context: { spendByModel: {}, spent: 0, elapsedMs: now - s.startedAt, steps: 0, lastMessages: [] },
      state: 'pending',
      createdAt: now,
      expiresAt: now + this.timeoutMs,
    };
  }
}
