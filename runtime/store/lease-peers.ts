import type { Broadcast } from '../broadcast.ts';
import type { Scope } from '../identity.ts';
import { newId } from '../ids.ts';
import type { KillSwitch } from './port.ts';

/**
 * The replicas' conversation about budget leases (runtime/store/leases.ts): changes announced over
 * the broadcast to every replica (a kill, a revocation, a request for slack), and their
 * acknowledgements, each sent to its asker's own topic (on the shared one every replica would read
 * every other's: N² at N replicas). Who is alive is kept in the store (`replicaBeat`: one write per
 * replica per beat), not said by every replica to every other — a thousand replicas saying hello
 * twice a second would be two million messages a second.
 */
export type LeaseChange =
  | { t: 'kill'; kill: KillSwitch }
  | { t: 'revoke' | 'slack'; scope: Scope }
  | { t: 'lift'; scope: Scope };

const TOPIC = 'leases';
/** How long a read of the live replicas is reused where it need not be fresh. */
const LIVE_REUSE_MS = 500;
/** Stands for the replicas a registry that cannot be read may hold: never acknowledges. */
const UNKNOWN = '?';

/** Where the replicas' liveness is kept (the money store: MoneyStore.replicaBeat). */
export interface ReplicaRegistry {
  replicaBeat(replica: string, at: number): Promise<unknown>;
  replicasSince(since: number): Promise<string[]>;
  replicaLeave(replica: string): Promise<void>;
}

export class LeasePeers {
  private readonly acks = new Map<string, { waiting: Set<string>; done: () => void }>();
  private unsubscribe: (() => void) | undefined;
  /** The live replicas last read, and when (live(): reused within LIVE_REUSE_MS unless fresh). */
  private seen: { at: number; live: Set<string> } | undefined;

  /**
   * `apply` carries out a change another replica announced; the acknowledgement goes once what it
   * returns has settled (what this replica gave back is in the store: the asker may count on it).
   */
  constructor(
    private readonly broadcast: Broadcast,
    private readonly replica: string,
    private readonly o: { validityMs: number; now: () => number },
    private readonly apply: (change: LeaseChange) => Promise<void> | undefined,
    private readonly registry: ReplicaRegistry,
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
    await this.beat().catch(() => {});
  }

  /** This replica is alive (after joining; then each kill-switch read beats: leases.ts refresh). */
  async beat(): Promise<void> {
    await this.registry.replicaBeat(this.replica, this.o.now());
  }

  leave(): void {
    this.say({ t: 'bye' });
    this.unsubscribe?.();
    void this.registry.replicaLeave(this.replica).catch(() => {});
  }

  /**
   * The other replicas that beat within twice the validity. `fresh` reads the store now (a kill
   * waits on exactly these); otherwise a read from the last LIVE_REUSE_MS will do (a slack request
   * only asks whether anyone may hold slack). A store that cannot say is a replica never heard from:
   * the announcement then waits its whole validity.
   */
  async live(fresh = false): Promise<Set<string>> {
    const now = this.o.now();
    if (!fresh && this.seen && now - this.seen.at < LIVE_REUSE_MS) return this.seen.live;
    let all: string[];
    try {
      all = await this.registry.replicasSince(now - 2 * this.o.validityMs);
    } catch {
      return new Set([UNKNOWN]);
    }
    const live = new Set(all.filter((r) => r !== this.replica));
    this.seen = { at: now, live };
    return live;
  }

  /** Tells every replica, without waiting. */
  tell(change: LeaseChange): void {
    this.say(change);
  }

  /** Sends a change and waits for every live replica's acknowledgement, at most validityMs. */
  async announce(change: LeaseChange): Promise<void> {
    const waiting = new Set(await this.live(true));
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
      this.seen?.live.delete(m.from);
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
