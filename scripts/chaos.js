#!/usr/bin/env node
// `npm run test:chaos -- --seed S --duration SECONDS --faults kill,pause,partition,controller,power,wipe`
// Builds the packages (skip with --no-build), compiles test/chaos, and runs one chaos run. As
// root it re-executes the run inside a private network namespace (`unshare -n`, lo up inside),
// where each node has its own loopback address and partition faults are possible; nothing
// touches the host's network. Otherwise partition faults are skipped with a notice.
// `--profile ci` runs the short CI profile: one short run per fault kind, then one with all.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
let args = process.argv.slice(2);
const run = (cmd, argv, opts = {}) => spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });

if (!args.includes('--no-build')) {
  for (const step of [['npx', ['tsc', '-b', 'packages/cli']], ['npx', ['tsc', '-p', 'test/chaos/tsconfig.json']]]) {
    const r = run(step[0], step[1]);
    if (r.status !== 0) {
      process.stderr.write(`chaos: '${step[0]} ${step[1].join(' ')}' failed\n`);
      process.exit(2);
    }
  }
} else {
  const r = run('npx', ['tsc', '-p', 'test/chaos/tsconfig.json']);
  if (r.status !== 0) process.exit(2);
}
args = args.filter((a) => a !== '--no-build');
const runner = path.join(root, 'node_modules/.cache/strand-chaos/chaos/run.js');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const haveUnshare = spawnSync('unshare', ['--version']).status === 0;
const haveIptables = spawnSync('iptables', ['--version']).status === 0;

function once(runArgs) {
  if (isRoot && haveUnshare && haveIptables) {
    return run('unshare', ['-n', '--', process.execPath, runner, '--netns', ...runArgs]).status ?? 1;
  }
  if (isRoot && haveUnshare) process.stderr.write('chaos: iptables is not installed: running without a private network namespace (no partition faults)\n');
  return run(process.execPath, [runner, ...runArgs]).status ?? 1;
}

const pi = args.indexOf('--profile');
if (pi >= 0) {
  const profile = args[pi + 1];
  if (profile !== 'ci') {
    process.stderr.write(`chaos: unknown profile ${profile} (known: ci)\n`);
    process.exit(2);
  }
  const rest = args.filter((_, i) => i !== pi && i !== pi + 1);
  // About seven minutes: each fault kind alone for 20 s (so every kind surely happens), then all
  // of them for 40 s with a two-member consumer group. Each run adds ~20 s of start-up and up to 30 s of healing and reading.
  const runs = [
    ['--seed', '101', '--duration', '20', '--faults', 'kill'],
    ['--seed', '102', '--duration', '20', '--faults', 'pause'],
    ['--seed', '103', '--duration', '20', '--faults', 'controller'],
    ['--seed', '104', '--duration', '20', '--faults', 'power'],
    ['--seed', '105', '--duration', '20', '--faults', 'partition'],
    ['--seed', '107', '--duration', '20', '--faults', 'wipe'],
    ['--seed', '106', '--duration', '40', '--faults', 'kill,pause,partition,controller,power,wipe', '--group', '2'],
  ];
  let failed = 0;
  for (const r of runs) if (once([...r, ...rest]) !== 0) failed++;
  process.stdout.write(`chaos CI profile: ${runs.length - failed}/${runs.length} runs valid\n`);
  process.exit(failed === 0 ? 0 : 1);
}
process.exit(once(args));
