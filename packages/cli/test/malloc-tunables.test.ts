/**
 * The glibc malloc settings (src/malloc-tunables.ts): merging with a GLIBC_TUNABLES the user set,
 * and the re-run in a child process that `strand bench` uses (status, signals, orphans).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hasMallocTunables, MALLOC_TUNABLES, withMallocTunables } from '../src/malloc-tunables';

const ours = MALLOC_TUNABLES.map(([k, v]) => `${k}=${v}`).join(':');

describe('withMallocTunables', () => {
  it('sets every key when nothing is set', () => {
    expect(withMallocTunables(undefined)).toBe(ours);
    expect(withMallocTunables('')).toBe(ours);
    expect(hasMallocTunables(undefined)).toBe(false);
    expect(hasMallocTunables(ours)).toBe(true);
  });

  it('keeps what the user set, and the user value of a key it would set', () => {
    const user = 'glibc.malloc.trim_threshold=1:glibc.malloc.arena_max=2';
    const merged = withMallocTunables(user);
    expect(merged.startsWith(`${user}:`)).toBe(true);
    expect(merged).toContain('glibc.malloc.mmap_threshold=33554432');
    expect(merged).not.toContain('trim_threshold=67108864');
    expect(hasMallocTunables(merged)).toBe(true);
  });
});

const describeLinux = process.platform === 'linux' ? describe : describe.skip;

describeLinux('rerunWithMallocTunables', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-malloc-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const module = path.resolve(__dirname, '../dist/malloc-tunables.js');

  /** A script that re-runs itself, then (in the child) runs `body`. */
  function script(body: string): string {
    const f = path.join(dir, `s${fs.readdirSync(dir).length}.js`);
    fs.writeFileSync(f, `if (!require(${JSON.stringify(module)}).rerunWithMallocTunables()) {\n${body}\n}\n`);
    return f;
  }

  function run(file: string, env: NodeJS.ProcessEnv = {}): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; out: string }> } {
    const rest = { ...process.env };
    delete rest['GLIBC_TUNABLES'];
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...rest, ...env } });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<{ code: number | null; out: string }>((resolve) => child.on('close', (code) => resolve({ code, out })));
    return { child, done };
  }

  it('runs the command once more with the settings and exits with its status', async () => {
    const f = script(`process.stdout.write(JSON.stringify({ t: process.env.GLIBC_TUNABLES, ppid: process.ppid }) + '\\n'); process.exitCode = 7;`);
    const { child, done } = run(f);
    const { code, out } = await done;
    expect(code).toBe(7);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const seen = JSON.parse(lines[0] as string) as { t: string; ppid: number };
    expect(seen.t).toBe(ours);
    expect(seen.ppid).toBe(child.pid);
  });

  it('does not re-run when the settings are already there', async () => {
    const f = script(`process.stdout.write(String(process.ppid));`);
    const { child, done } = run(f, { GLIBC_TUNABLES: ours });
    const { code, out } = await done;
    expect(code).toBe(0);
    expect(Number(out)).toBe(process.pid);
    expect(child.pid).toBeDefined();
  });

  it('passes SIGTERM on and reports the signal as 128 + its number', async () => {
    const f = script(`process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`);
    const { child, done } = run(f);
    await new Promise<void>((resolve) => child.stdout?.on('data', () => resolve()));
    child.kill('SIGTERM');
    const { code } = await done;
    expect(code).toBe(128 + os.constants.signals.SIGTERM);
  });

  it('the child exits when its parent is killed with SIGKILL', async () => {
    const f = script(`process.stdout.write(String(process.pid) + '\\n'); setInterval(() => {}, 1000);`);
    const { child, done } = run(f);
    const pid = await new Promise<number>((resolve) => child.stdout?.on('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    child.kill('SIGKILL');
    await done;
    // Gone, or a zombie waiting for whoever adopted it to reap it.
    const alive = (): boolean => {
      try {
        return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    const deadline = performance.now() + 5_000;
    while (alive() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const stillAlive = alive();
    if (stillAlive) process.kill(pid, 'SIGKILL');
    expect(stillAlive).toBe(false);
  });
});
