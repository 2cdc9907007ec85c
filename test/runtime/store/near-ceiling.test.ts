import { describe, expect, it } from 'vitest';
import type { Scope } from '../../../runtime/identity.ts';
import { NearCeiling } from '../../../runtime/store/near-ceiling.ts';

const team = 'team:a' as Scope;
const seat = 'seat:a/b/c' as Scope;
const other = 'team:z' as Scope;

describe('near the ceiling (what a replica remembers)', () => {
  it('keeps a budget tight for 2 s after it refused, for identities that include it only', () => {
    let now = 1_000;
    const near = new NearCeiling(() => now, 500);
    expect(near.any).toBe(false);
    expect(near.isTight([team, seat])).toBe(false);
    near.refused(team);
    expect(near.any).toBe(true);
    expect(near.isTight([team, seat])).toBe(true);
    expect(near.isTight([other, seat])).toBe(false);
    now += 2_000;
    expect(near.isTight([team])).toBe(true);
    now += 1;
    expect(near.isTight([team])).toBe(false);
    // Forgotten once past, so the per-call test is one size check again.
    expect(near.any).toBe(false);
  });

  it('asks for slack once per upkeep period; a peer that asked a moment ago counts as an answer', () => {
    let now = 0;
    const near = new NearCeiling(() => now, 500);
    expect(near.slackAsk(team)).toBe('ask');
    now += 499;
    expect(near.slackAsk(team)).toBe('no');
    expect(near.slackAsk(other)).toBe('ask');
    now += 1;
    expect(near.slackAsk(team)).toBe('ask');
    // Another replica asked on a budget this one has not asked about: it is tight here too, and
    // for 20 ms asking again would bring back nothing new.
    near.heardAsk(seat);
    expect(near.isTight([seat])).toBe(true);
    now += 19;
    expect(near.slackAsk(seat)).toBe('heard');
    now += 2;
    expect(near.slackAsk(seat)).toBe('ask');
  });

  it("its own recent ask comes first: 'no' even when a peer asked a moment ago", () => {
    let now = 0;
    const near = new NearCeiling(() => now, 500);
    expect(near.slackAsk(team)).toBe('ask');
    now += 5;
    near.heardAsk(team);
    expect(near.slackAsk(team)).toBe('no');
  });

  it('forgets asks, its own and heard, older than the idle time', () => {
    let now = 0;
    const near = new NearCeiling(() => now, 500);
    near.slackAsk(team);
    now += 300;
    near.forgetIdle(200);
    // Without the forget, 300 ms after its ask it would still be 'no'.
    expect(near.slackAsk(team)).toBe('ask');
    // A peer's ask heard with a quiet period of 20 ms: forgotten, it no longer counts.
    near.heardAsk(seat);
    now += 10;
    near.forgetIdle(5);
    expect(near.slackAsk(seat)).toBe('ask');
  });
});
