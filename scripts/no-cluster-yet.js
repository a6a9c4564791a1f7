#!/usr/bin/env node
// Placeholder entry for `npm start` / `npm run test:chaos` until the broker and controller exist.
// It says so plainly and exits non-zero rather than pretending a cluster is running.
const what = process.argv[2] || 'start';
process.stderr.write(
  `strand: '${what}' needs a cluster, and there is none yet: the controller and broker ` +
    `packages have not landed. Today you can run 'npm test', 'npm run bench:storage' and ` +
    `'npm run test:raft-sim'.\n`,
);
process.exit(1);
