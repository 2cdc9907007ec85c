import type { Broadcast } from '../broadcast.ts';
import type { Scope } from '../identity.ts';
import { newId } from '../ids.ts';
import type { KillSwitch } from './port.ts';

/**
 * The replicas' conversation about budget leases (runtime/store/leases.ts), over the broadcast:
 * who is alive (hello, hi, bye, and any message heard), changes announced to every replica (a
 * kill, a revocation, a request for slack), and their acknowledgements, each sent to its asker's
 * own topic (on the shared one every replica would read every other's: N² at N replicas).
 */
export type LeaseChange =
  | { t: 'kill'; kill: KillSwitch }
  | { t: 'revoke' | 'slack'; scope: Scope }
  | { t: 'lift'; scope: Scope };

const TOPIC = 'leases';

export class LeasePeers {
  private readonly peers = new Map<string, number>();
  private readonly acks = new Map<string, { waiting: Set<string>; done: () => void }>();
  private unsubscribe: (() => void) | undefined;

  /**
   * `apply` carries out a change another replica announced; the acknowledgement goes once what it
   * returns has settled (what this replica gave back is in the store: the asker may count on it).
   */
  constructor(
    private readonly broadcast: Broadcast,
    private readonly replica: string,
    private readonly o: { validityMs: number; now: () => number },
    private readonly apply: (change: LeaseChange) => Promise<void> | undefined,
  ) {}

  async join(): Promise<void> {
    const [all, mine] = await Promise.all([
      this.broadcast.subscribe(TOPIC, (m) => this.heard(m)),
      this.broadcast.subscribe(`${TOPIC}:${this.replica}`, (m) => this.heard(m)),
    ]);
    this.unsubscribe = () => {
      all();
      mine();
    };
    this.hello();
  }

  hello(): void {
    this.say({ t: 'hello' });
  }

  leave(): void {
    this.say({ t: 'bye' });
    this.unsubscribe?.();
  }

  /** Replicas heard from within twice the validity. */
  live(): Set<string> {
    const now = this.o.now();
    return new Set([...this.peers].filter(([, seen]) => now - seen < 2 * this.o.validityMs).map(([p]) => p));
  }

  /** Tells every replica, without waiting. */
  tell(change: LeaseChange): void {
    this.say(change);
  }

  /** Sends a change and waits for every live replica's acknowledgement, at most validityMs. */
  async announce(change: LeaseChange): Promise<void> {
    const waiting = this.live();
    if (waiting.size === 0) {
      this.say({ ...change, nonce: '' });
      return;
    }
    const nonce = newId('ack');
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.acks.set(nonce, { waiting, done: resolve });
      timer = setTimeout(resolve, this.o.validityMs + 250);
      this.say({ ...change, nonce });
    });
    clearTimeout(timer);
    this.acks.delete(nonce);
  }

  /** Publishes to every replica, or to one (`to`: its own topic). */
  private say(msg: Record<string, unknown>, to?: string): void {
    this.broadcast.publish(to ? `${TOPIC}:${to}` : TOPIC, JSON.stringify({ ...msg, from: this.replica }));
  }

  private heard(raw: string): void {
    let m: { t?: string; from?: string; nonce?: string; kill?: KillSwitch; scope?: Scope; to?: string };
    try {
      m = JSON.parse(raw);
    } catch {
      return;
    }
    if (!m.from || m.from === this.replica) return;
    const known = this.peers.has(m.from);
    this.peers.set(m.from, this.o.now());
    // A replica that just joined hears from each of the others at once, not at their next upkeep.
    if (m.t === 'hello' && !known) this.say({ t: 'hi' });
    let done: Promise<void> | undefined;
    if (m.t === 'kill' && m.kill) done = this.apply({ t: 'kill', kill: m.kill });
    else if ((m.t === 'revoke' || m.t === 'slack' || m.t === 'lift') && m.scope) {
      done = this.apply({ t: m.t, scope: m.scope });
    } else if (m.t === 'ack') {
      // Only the asker counts an acknowledgement; nobody answers one (that would echo forever).
      const w = m.to === this.replica && m.nonce ? this.acks.get(m.nonce) : undefined;
      w?.waiting.delete(m.from);
      if (w && w.waiting.size === 0) w.done();
      return;
    } else if (m.t === 'bye') {
      this.peers.delete(m.from);
      for (const w of this.acks.values()) {
        w.waiting.delete(m.from);
        if (w.waiting.size === 0) w.done();
      }
      return;
    }
    const { nonce, from } = m;
    if (nonce) void (done ?? Promise.resolve()).then(() => this.say({ t: 'ack', nonce, to: from }, from));
  }
}
