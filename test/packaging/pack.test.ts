import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The package as a user gets it: `npm pack` (which builds dist/ in `prepack`), installed from the
 * tarball into an empty folder, started from another empty folder. Nothing is downloaded:
 *
 * - npm 11 resolves the dependencies of a tarball against the registry's full package documents,
 *   which an install from a lockfile never puts in the npm cache, so `npm install -g <tgz>
 *   --offline` fails here (ENOTCACHED). The test installs with `npm ci --offline` instead, from a
 *   lockfile that pins the versions of ours (package-lock.json, dev entries left out) under
 *   node_modules/chokepoint/node_modules — the layout of a global install — so every tarball comes
 *   from the cache by its integrity.
 * - better-sqlite3's install script is `prebuild-install || node-gyp rebuild`: with no binary to
 *   download it compiles SQLite (minutes). The test hands prebuild-install a local prebuild instead
 *   (its `local-prebuilds` option), packed from the addon this checkout already compiled: the
 *   install scripts run as they would for a user, and the addon is the one the other tests use.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  license: string;
  engines: Record<string, string>;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
};

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: { ...process.env, ...opts.env }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${cmd} ${args.join(' ')} failed:\n${stdout}\n${stderr}`)) : resolve(stdout),
    );
  });
}

/** Every product file of a folder (relative paths), for what the package must hold. */
function sources(dir: string, ext: RegExp): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && ext.test(e.name))
    .map((e) => join(e.parentPath, e.name).slice(ROOT.length + 1));
}

/** A lockfile installing the tarball with exactly our dependency tree (see the top). */
function lockFor(tarball: string, integrity: string): object {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  };
  const spec = `file:${tarball}`;
  const packages: Record<string, object> = {
    '': { dependencies: { [pkg.name]: spec } },
    [`node_modules/${pkg.name}`]: {
      version: pkg.version,
      resolved: spec,
      integrity,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path && !entry.dev) packages[`node_modules/${pkg.name}/${path}`] = entry;
  }
  return { name: 'installed', lockfileVersion: 3, requires: true, packages };
}

interface Started {
  url: string;
  out: () => string;
  stop(): Promise<void>;
}

/** Starts the installed `chokepoint serve`; resolves at the banner's last line (the admin token). */
function serve(bin: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Started> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(CHOKEPOINT_|REDIS_URL|ANTHROPIC_|OPENAI_)/.test(k)),
  );
  const proc: ChildProcess = spawn(bin, ['serve', '--port', '0'], {
    cwd,
    env: { ...clean, CHOKEPOINT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<void>((done) => proc.on('exit', () => done()));
  return new Promise((resolve, reject) => {
    proc.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${out}`)));
    proc.stdout!.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (!m || !/admin token .*\n/.test(out)) return;
      resolve({
        url: m[1]!,
        out: () => out,
        stop: async () => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
          await exited;
        },
      });
    });
  });
}

describe('the npm package', () => {
  const work = mkdtempSync(join(tmpdir(), 'cp-pack-'));
  let files: string[] = [];
  let tarball = '';
  let bin = '';
  let installed = '';
  const started: Started[] = [];

  beforeAll(async () => {
    // Readable by others, as an install is: as root, Chokepoint runs a stdio MCP server (the
    // support-desk example's) as `nobody`, which must reach the installed package.
    chmodSync(work, 0o755);
    const out = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT });
    const [packed] = JSON.parse(out.slice(out.search(/^\[/m))) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    tarball = join(work, packed!.filename);
    files = packed!.files.map((f) => f.path).sort();
  }, 240_000);
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
    // A whole node_modules: slow to delete on a busy machine.
    rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it('ships the compiled runtime, the example workflows and config, and no tests, benchmarks or sources', () => {
    const top = new Set(['bin/chokepoint.js', 'package.json', 'README.md', 'chokepoint.config.yaml']);
    expect(files.filter((f) => !f.startsWith('dist/') && !top.has(f))).toEqual([]);
    expect([...top].filter((f) => !files.includes(f))).toEqual([]);
    expect(files.filter((f) => /\.tsx?$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
    // What runs: the CLI, the public entry with its types, the package scope of dist/, the module
    // hooks, every Lua script of the Redis store, every example workflow compiled.
    const must = [
      'dist/package.json',
      'dist/runtime/faces/cli/main.js',
      'dist/runtime/workflow.js',
      'dist/runtime/workflow.d.ts',
      'dist/runtime/workflows/import-hooks.js',
      'dist/adapters/mcp/examples/tickets-server.js',
      ...sources('runtime', /\.lua$/).map((f) => `dist/${f}`),
      ...sources('workflows', /\.ts$/).map((f) => `dist/${f.replace(/\.ts$/, '.js')}`),
    ];
    expect(must.filter((f) => !files.includes(f))).toEqual([]);
    expect(files.length).toBeLessThan(600);
  });

  it('installs from the tarball with nothing downloaded and no native compile', async () => {
    installed = join(work, 'installed');
    mkdirSync(installed);
    const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    writeFileSync(
      join(installed, 'package.json'),
      JSON.stringify({ private: true, dependencies: { [pkg.name]: `file:${tarball}` } }),
    );
    writeFileSync(join(installed, 'package-lock.json'), JSON.stringify(lockFor(tarball, integrity)));
    const sqlite = join(ROOT, 'node_modules', 'better-sqlite3');
    const { version } = JSON.parse(readFileSync(join(sqlite, 'package.json'), 'utf8')) as { version: string };
    const prebuilds = join(work, 'prebuilds');
    mkdirSync(prebuilds);
    const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
    await run('tar', ['czf', join(prebuilds, name), 'build/Release/better_sqlite3.node'], { cwd: sqlite });

    // prebuild-install reads its options from a .prebuild-installrc in the folders above it.
    writeFileSync(join(installed, '.prebuild-installrc'), `local-prebuilds=${prebuilds}\n`);
    await run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: installed });
    const home = join(installed, 'node_modules', pkg.name);
    bin = join(installed, 'node_modules', '.bin', 'chokepoint');
    expect(existsSync(bin)).toBe(true);
    expect(existsSync(join(home, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))).toBe(
      true,
    );
    // Compiling from source would have left its object files beside the addon.
    expect(existsSync(join(home, 'node_modules/better-sqlite3/build/Release/obj.target'))).toBe(false);
  }, 240_000);

  it('serves in an empty folder without tsx: embedded store, the example workflows, the emulator', async () => {
    const home = join(installed, 'node_modules', pkg.name);
    // tsx stays a dependency only for workflow files written in TypeScript: away, the package
    // must still run on the compiled JavaScript alone.
    const tsx = join(home, 'node_modules', 'tsx');
    renameSync(tsx, `${tsx}.away`);
    const cwd = mkdtempSync(join(work, 'empty-'));
    let s: Started;
    try {
      s = await serve(bin, cwd, { CHOKEPOINT_DATA_DIR: join(cwd, 'data') });
      started.push(s);
    } finally {
      renameSync(`${tsx}.away`, tsx);
    }
    const banner = s.out();
    expect(banner).toContain(
      `workflows    refund@1, research@1, support-desk@1, triage@1   (${home}/dist/workflows)`,
    );
    expect(banner).not.toContain('INVALID');
    expect(banner).toContain(`store        embedded (${join(cwd, 'data')})`);
    expect(banner).toContain('provider     emulator');

    expect(await (await fetch(`${s.url}/healthz`)).json()).toEqual({ ok: true });
    const admin = /admin token\s+(cpo_\S+)/.exec(banner)![1]!;
    const made = await fetch(`${s.url}/api/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ team: 'payments', env: 'prod', seat: 'alice' }),
    });
    expect(made.status).toBe(201);
    const { key } = (await made.json()) as { key: string };
    const res = await fetch(`${s.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'claude-haiku-4-5',
        max_tokens: 64,
        messages: [{ role: 'user', content: 'hello from the tarball' }],
      }),
    });
    expect(res.status).toBe(200);
    const msg = (await res.json()) as { content: Array<{ text: string }>; usage: { output_tokens: number } };
    expect(msg.content[0]!.text).toContain('hello from the tarball');
    expect(msg.usage.output_tokens).toBeGreaterThan(0);
    await s.stop();
  }, 60_000);

  it('loads a workflows folder of bare TypeScript files (tsx, for them only)', async () => {
    const cwd = mkdtempSync(join(work, 'own-'));
    mkdirSync(join(cwd, 'workflows'));
    writeFileSync(
      join(cwd, 'workflows', 'hello.ts'),
      `import { defineAgent, z } from 'chokepoint/workflow';

const input: z.ZodType<{ name: string }> = z.object({ name: z.string() });

export default defineAgent({
  id: 'hello', version: 1, description: 'Says hello',
  input, system: 'You greet people.', tools: {},
  limits: { spend: '$0.05', time: '1m', steps: 2 },
  task: (i) => \`Greet \${i.name}\`,
});
`,
    );
    const s = await serve(bin, cwd, { CHOKEPOINT_DATA_DIR: join(cwd, 'data') });
    started.push(s);
    expect(s.out()).toContain(`workflows    hello@1   (${join(cwd, 'workflows')})`);
    await s.stop();
  }, 60_000);
});
