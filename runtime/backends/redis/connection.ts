import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/**
 * How the Redis backend connects, written once. Commands (keys, alarms, runs, sessions,
 * reconciliations, broadcasts) share one connection that gives up on a command after two retries,
 * so a caller fails closed instead of hanging; BullMQ opens (and closes) its own connections from
 * `bullConnection`, which must retry forever (`maxRetriesPerRequest: null`, BullMQ's requirement).
 * The money store keeps its own fail-fast connection (money/store.ts).
 *
 * A URL `redis-cluster://[user:pass@]host:port,host:port,...` (or `rediss-cluster://` for TLS)
 * names a Redis Cluster by some of its nodes: every connection is then an ioredis `Cluster`.
 */
export const COMMAND_OPTIONS = { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false };

/** A single Redis or a Redis Cluster: the commands the backend uses are the same on both. */
export type RedisClient = Redis | Cluster;

export interface ClusterTarget {
  nodes: { host: string; port: number }[];
  /** Credentials and TLS, given to the connection to every node. */
  redisOptions: { username?: string; password?: string; tls?: object };
}

const CLUSTER_URL = /^(rediss?)-cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/;

export function isClusterUrl(url: string): boolean {
  return /^rediss?-cluster:\/\//.test(url);
}

/**
 * The nodes and options of a `redis-cluster://` URL. Throws naming the URL's part that is wrong.
 *
 * @example parseClusterUrl('redis-cluster://127.0.0.1:7000,127.0.0.1:7001')
 */
export function parseClusterUrl(url: string): ClusterTarget {
  const m = CLUSTER_URL.exec(url);
  if (!m) {
    throw new Error(
      `store.redisUrl: not a cluster URL: expected redis-cluster://[user:password@]host:port,host:port,... (got ${redactUrl(url)})`,
    );
  }
  const [, scheme, auth, hosts] = m as unknown as [string, string, string | undefined, string];
  const nodes = hosts.split(',').map((hp) => {
    const at = hp.lastIndexOf(':');
    const host = at > 0 ? hp.slice(0, at).replace(/^\[(.*)\]$/, '$1') : hp;
    const port = at > 0 ? Number(hp.slice(at + 1)) : 6379;
    if (!host || !Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new Error(`store.redisUrl: bad cluster node ${JSON.stringify(hp)}: expected host:port`);
    }
    return { host, port };
  });
  const redisOptions: ClusterTarget['redisOptions'] = {};
  if (auth) {
    const colon = auth.indexOf(':');
    const user = decodeURIComponent(colon < 0 ? auth : auth.slice(0, colon));
    const password = colon < 0 ? undefined : decodeURIComponent(auth.slice(colon + 1));
    if (password === undefined) redisOptions.password = user;
    else {
      if (user) redisOptions.username = user;
      redisOptions.password = password;
    }
  }
  if (scheme === 'rediss') redisOptions.tls = {};
  return { nodes, redisOptions };
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/:]*):[^@/]*@/, '//$1:***@').replace(/\/\/([^@/:]+)@/, '//***@');
}

/**
 * One connection to `url`: a `Redis`, or a `Cluster` for a `redis-cluster://` URL. On a cluster,
 * `options` apply to the cluster (offline queue, lazy connect) and to each node's connection.
 */
export function connectRedis(url: string, options: RedisOptions = {}): RedisClient {
  if (!isClusterUrl(url)) return new Redis(url, options);
  const { nodes, redisOptions } = parseClusterUrl(url);
  const { enableOfflineQueue, lazyConnect, retryStrategy, ...perNode } = options;
  const clusterOptions: ClusterOptions = {
    redisOptions: { ...perNode, ...redisOptions },
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(lazyConnect === undefined ? {} : { lazyConnect }),
    ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) ?? null } : {}),
  };
  return new Cluster(nodes, clusterOptions);
}

export function commandConnection(url: string): RedisClient {
  return connectRedis(url, COMMAND_OPTIONS);
}

/**
 * BullMQ's connections. On one Redis, a spec per queue or worker (BullMQ opens and closes its own
 * connections from it). On a cluster BullMQ needs a `Cluster` instance, which it never closes: the
 * instances handed out are closed by `close()`, after the queues and workers using them.
 */
export class BullConnections {
  private readonly opened: Cluster[] = [];
  constructor(private readonly url: string) {}

  next(): { url: string; maxRetriesPerRequest: null } | Cluster {
    if (!isClusterUrl(this.url)) return { url: this.url, maxRetriesPerRequest: null };
    const c = connectRedis(this.url, { maxRetriesPerRequest: null }) as Cluster;
    c.on('error', () => {}); // BullMQ reports the errors on its own objects.
    this.opened.push(c);
    return c;
  }

  close(): void {
    for (const c of this.opened.splice(0)) c.disconnect();
  }
}

/**
 * The prefix of one family of keys. On a cluster, the family gets a hash tag of its own (`{cp}` →
 * `{cp/sessions}`), so the cluster spreads the families over its nodes; on one Redis the prefix is
 * left as it is (the key names existing deployments have).
 */
export function familyPrefix(prefix: string, family: string, cluster: boolean): string {
  if (!cluster) return prefix;
  return /\{[^}]+\}/.test(prefix) ? prefix.replace(/\{([^}]+)\}/, `{$1/${family}}`) : `${prefix}{${family}}`;
}

/**
 * BullMQ's keys of one queue: `${prefix}bull:<queue>:*` on one Redis; on a cluster each queue under
 * a hash tag of its own (`{cp/runs-queue}bull:runs:*`), as BullMQ needs a queue's keys in one slot.
 */
export function bullPrefix(prefix: string, queue: string, url: string): string {
  return `${familyPrefix(prefix, `${queue}-queue`, isClusterUrl(url))}bull`;
}
