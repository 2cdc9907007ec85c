import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Served {
  url: string;
  proc: ChildProcess;
  output: () => string;
  stop(): Promise<number | null>;
}

/** Starts the real `chokepoint serve` as a child process on a free port; resolves once it listens. */
export function serveProcess(env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<Served> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-serve-'));
  const proc = spawn('node', ['bin/chokepoint.js', 'serve', '--port', '0', ...args], {
    env: {
      ...process.env,
      REDIS_URL: '',
      CHOKEPOINT_DATA_DIR: dataDir,
      CHOKEPOINT_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 20_000);
    proc.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${out}`)));
    proc.stdout!.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      // The banner ends with the admin token line.
      if (!m || !/admin token/.test(out)) return;
      clearTimeout(timer);
      resolve({
        url: m[1]!,
        proc,
        output: () => out,
        stop: () =>
          new Promise((done) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return done(proc.exitCode);
            proc.removeAllListeners('exit');
            proc.on('exit', (code, signal) => {
              // A process ended by a signal says which in its output, for the failure message.
              if (signal) out += `\n[exited by ${signal}]`;
              done(code);
            });
            proc.kill('SIGTERM');
          }),
      });
    });
  });
}

/** Starts a real `chokepoint worker` (Redis backend) as a child process; resolves once it works. */
export function workerProcess(env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<Served> {
  const proc = spawn('node', ['bin/chokepoint.js', 'worker', ...args], {
    env: { ...process.env, CHOKEPOINT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${out}`)), 20_000);
    proc.on('exit', (code) => reject(new Error(`worker exited with ${code}:\n${out}`)));
    proc.stdout!.on('data', () => {
      // The banner ends with the store line.
      if (!/^worker .*\n[\s\S]*store/m.test(out)) return;
      clearTimeout(timer);
      resolve({
        // The metrics address when started with --metrics-port, else ''.
        url: /^ {2}metrics +(http:\/\/\S+)\/metrics$/m.exec(out)?.[1] ?? '',
        proc,
        output: () => out,
        stop: () =>
          new Promise((done) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return done(proc.exitCode);
            proc.removeAllListeners('exit');
            proc.on('exit', (code) => done(code));
            proc.kill('SIGTERM');
          }),
      });
    });
  });
}
