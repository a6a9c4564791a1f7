import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ScenarioOutcome } from '../../src/bench/broker-bench';

const SCRIPT = path.resolve(__dirname, '../../dist/bench/broker-bench.js');

function runBench(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], { env, timeout: 150_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

/** PIDs whose command line mentions `text` (the nodes of strand dev name their data directory). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(text)) pids.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

describe('npm run bench:broker', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'broker-bench-test-'));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('runs scenarios on fresh strand dev clusters, reports figures against targets and leaves nothing behind', async () => {
    const r = await runBench(['--json', '--only', 'produce-rf1,end-to-end', '--scale', '0.01'], { ...process.env, TMPDIR: tmp });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { kind: string; scale: number; scenarios: ScenarioOutcome[] };
    expect(out).toMatchObject({ kind: 'broker-bench', scale: 0.01 });
    expect(out.scenarios.map((s) => s.name)).toEqual(['produce-rf1', 'end-to-end']);
    const [rf1, e2e] = out.scenarios;
    expect(rf1?.figures['recordsPerSec']).toBeGreaterThan(0);
    expect(rf1?.figures['brokersCpuSeconds']).toBeGreaterThan(0);
    expect(rf1?.met).toBe((rf1?.figures['recordsPerSec'] ?? 0) >= 1_000_000);
    expect(e2e?.figures['consumep50Ms']).toBeGreaterThan(0);
    expect(e2e?.figures['producep99Ms']).toBeGreaterThanOrEqual(e2e?.figures['producep50Ms'] ?? Infinity);
    // Each cluster's data directory (under TMPDIR) is gone, and so are its processes.
    expect(fs.readdirSync(tmp)).toEqual([]);
    expect(processesMentioning(tmp)).toEqual([]);
  }, 180_000);

  it('rejects an unknown scenario', async () => {
    const r = await runBench(['--only', 'nope'], { ...process.env, TMPDIR: tmp });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown scenario 'nope'/);
  });

  it('rejects a negative warm-up and an empty measurement', async () => {
    const r = await runBench(['--warmup-seconds', '-1'], { ...process.env, TMPDIR: tmp });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--warmup-seconds needs a number >= 0/);
    const m = await runBench(['--measure-seconds', '0'], { ...process.env, TMPDIR: tmp });
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/--measure-seconds needs a positive number/);
  });
});
