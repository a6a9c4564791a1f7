#!/usr/bin/env node
// Placeholder for `npm run test:chaos` until the chaos suite exists (its own issue). It says so
// plainly and exits non-zero rather than pretending chaos tests ran.
const what = process.argv[2] || 'test:chaos';
process.stderr.write(
  `strand: '${what}' is not written yet. The multi-process failover tests (kill -9 of the ` +
    `leader and of the active controller, paused followers) run in 'npm test'.\n`,
);
process.exit(1);
