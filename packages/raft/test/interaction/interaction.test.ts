// Runs every script in testdata/ (format and commands: harness.ts) and compares each command's
// transcript with the expected output checked in below it. To (re)write the expected outputs
// after an intended change, run with RAFT_INTERACTION_REWRITE=1 and review the diff.

import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Interaction, blockComments, formatScript, parseScript } from './harness';

const dir = join(__dirname, 'testdata');
const rewrite = process.env['RAFT_INTERACTION_REWRITE'] === '1';

describe('raft interactions (testdata/*.txt)', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();
  test('there are scripts', () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
  });
  for (const f of files) {
    test(f, () => {
      const text = readFileSync(join(dir, f), 'utf8');
      const blocks = parseScript(text);
      const it = new Interaction();
      const results = blocks.map((b) => ({ command: b.command, output: it.run(b.command) }));
      if (rewrite) {
        writeFileSync(join(dir, f), formatScript(results, blockComments(text)));
        return;
      }
      blocks.forEach((b, i) => {
        const got = results[i]?.output ?? '';
        if (got !== b.expected) {
          // Show which command diverged, with both transcripts.
          expect(`${f}:${b.line} ${b.command}\n${got}`).toEqual(`${f}:${b.line} ${b.command}\n${b.expected}`);
        }
      });
    });
  }
});
