import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const run = promisify(execFile);

/** Whether `redis-server` (and `redis-cli`) can be started here; .ci/run installs them when missing. */
export const hasRedisServer =
  spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0;

export const NO_REDIS_SERVER =
  'redis-server is not installed: the Redis Cluster tests start their own cluster (apt-get install redis-server, or run .ci/run)';

export interface RedisCluster {
  /** `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,...`, the backend's cluster URL form. */
  url: string;
  ports: number[];
  /** Kills every node and removes their files. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it holds, up to `limitMs` (a loaded machine takes its time to start processes). */
async function until(what: string, check: () => Promise<boolean>, limitMs = 60_000): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() - start > limitMs) throw new Error(`redis cluster: ${what} within ${limitMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function clusterOk(port: number): Promise<boolean> {
  const redis = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return /cluster_state:ok/.test(await redis.cluster('INFO'));
  } finally {
    redis.disconnect();
  }
}

/**
 * Starts a real Redis Cluster of `nodes` primaries on free ports: `redis-server --cluster-enabled
 * yes` per node (bus port chosen free too), then `redis-cli --cluster create` (3 or more nodes) or
 * all 16,384 slots on the one node, and waits for `cluster_state:ok` on every node.
 */
export async function startRedisCluster(opts: { nodes?: number } = {}): Promise<RedisCluster> {
  const n = opts.nodes ?? 3;
  if (!hasRedisServer) throw new Error(NO_REDIS_SERVER);
  if (n !== 1 && n < 3) throw new Error('a Redis Cluster has 1 or at least 3 primaries');
  const dir = mkdtempSync(join(tmpdir(), 'cp-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  // Nodes die with the test process, even when a timed-out test never reaches its stop().
  const killAll = () => {
    for (const child of children) child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stop = async () => {
    process.off('exit', killAll);
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < n; i++) {
      const port = await freePort();
      const bus = await freePort();
      ports.push(port);
      // Each node's files under its own name in one temp folder (the cluster config is rewritten by Redis).
      // The announced address, so that a node that met no other (one-node cluster) reports it too.
      const args = ['--port', String(port), '--cluster-port', String(bus), '--bind', '127.0.0.1'];
      args.push('--cluster-announce-ip', '127.0.0.1');
      args.push('--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`));
      args.push('--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no');
      children.push(spawn('redis-server', args, { stdio: 'ignore' }));
    }
    await Promise.all(
      ports.map((port) =>
        until(`node ${port} did not answer`, async () => {
          const r = await run('redis-cli', ['-p', String(port), 'PING']);
          return r.stdout.trim() === 'PONG';
        }),
      ),
    );
    if (n === 1) {
      await run('redis-cli', ['-p', String(ports[0]), 'CLUSTER', 'ADDSLOTSRANGE', '0', '16383']);
    } else {
      const nodes = ports.map((p) => `127.0.0.1:${p}`);
      await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
    }
    await Promise.all(
      ports.map((port) => until(`node ${port} did not reach cluster_state:ok`, () => clusterOk(port))),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, ports, stop };
}
