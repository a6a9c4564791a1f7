/**
 * The chaos checker (test/chaos/checker.ts) on hand-made histories: a clean history is valid,
 * and each anomaly of the SCENARIOS.md vocabulary is reported as what it is (lost, unseen,
 * duplicated, inconsistent offsets, reordered, poll skip, nonmonotonic poll, phantom). Pure and
 * fast, so it runs in `npm test` (the chaos runs themselves do not).
 */
import { check } from './chaos/checker';
import type { History, SendRecord } from './chaos/workload';

function send(seq: number, offset: number, outcome: 'ok' | 'info' = 'ok'): SendRecord {
  return { topic: 't', partition: 0, producerId: 7, seq, value: `v${seq}`, start: seq, end: seq + 1, outcome, offset, attempts: 1, lastError: '' };
}

function history(sends: SendRecord[], final: [number, string][], polls: [number, string][][] = []): History {
  return { sends, polls: polls.map((records, i) => ({ reader: 'r', topic: 't', partition: 0, time: i, fetchOffset: records[0]?.[0] ?? 0, records })), finalReads: { 't/0': final } };
}

test('a clean history is valid; an unacknowledged send may or may not appear', () => {
  const v = check(history([send(0, 0), send(1, 1), send(2, -1, 'info')], [[0, 'v0'], [1, 'v1'], [2, 'v2']], [[[0, 'v0']], [[1, 'v1']]]));
  expect(v.anomalies).toEqual([]);
  expect(v.valid).toBe(true);
  expect(v.counts).toMatchObject({ acked: 2, indeterminate: 1, lost: 0 });
});

test('lost (below the highest read offset) and unseen (above it)', () => {
  const v = check(history([send(0, 0), send(1, 1), send(2, 2), send(3, 3)], [[0, 'v0'], [2, 'v2']]));
  expect(v.counts.lost).toBe(1);
  expect(v.counts.unseen).toBe(1);
  expect(v.valid).toBe(false);
});

test('duplicated, inconsistent offsets, reordered, phantom', () => {
  expect(check(history([send(0, 0), send(1, 1)], [[0, 'v0'], [1, 'v1'], [2, 'v0']])).counts.duplicated).toBe(1);
  // The acknowledgement said offset 1 holds v1; a reader saw v2 there.
  const inc = check(history([send(0, 0), send(1, 1), send(2, 2)], [[0, 'v0'], [1, 'v2'], [2, 'v1']]));
  expect(inc.counts.inconsistent).toBeGreaterThan(0);
  expect(check(history([send(0, 1, 'info'), send(1, 0, 'info')], [[0, 'v1'], [1, 'v0']])).counts.reordered).toBe(1);
  expect(check(history([send(0, 0)], [[0, 'v0'], [1, 'nobody-sent-this']])).counts.phantom).toBe(1);
});

test('run-time readers: skips and going backwards', () => {
  const sends = [send(0, 0), send(1, 1), send(2, 2)];
  const final: [number, string][] = [[0, 'v0'], [1, 'v1'], [2, 'v2']];
  expect(check(history(sends, final, [[[0, 'v0']], [[2, 'v2']]])).counts.pollSkips).toBe(1);
  expect(check(history(sends, final, [[[0, 'v0'], [1, 'v1']], [[1, 'v1']]])).counts.nonmonotonicPolls).toBe(1);
});

test('consumer group: commits going backwards, a skip after an assignment, records never consumed', () => {
  const h = history([send(0, 0), send(1, 1), send(2, 2)], [[0, 'v0'], [1, 'v1'], [2, 'v2']]);
  const commit = (member: string, end: number, offset: number) => ({ member, start: end, end, topic: 't', partition: 0, offset, ok: true, error: '' });
  h.group = {
    events: [{ member: 'a', time: 0, kind: 'assigned', partitions: ['t/0'] }, { member: 'b', time: 10, kind: 'assigned', partitions: ['t/0'] }],
    polls: [{ member: 'a', time: 1, records: [['t', 0, 0, 'v0'], ['t', 0, 1, 'v1']] }, { member: 'b', time: 11, records: [['t', 0, 2, 'v2']] }],
    commits: [commit('a', 2, 2), commit('a', 3, 1)],
  };
  const v = check(h);
  expect(v.counts.commitsBackwards).toBe(1);
  expect(v.counts.groupPollSkips).toBe(0); // b started at 2, the highest commit
  expect(v.counts.groupUnseen).toBe(0);
  h.group.polls = [{ member: 'a', time: 1, records: [['t', 0, 1, 'v1']] }];
  h.group.commits = [];
  const w = check(h);
  expect(w.counts.groupPollSkips).toBe(1); // started at 1 with nothing committed
  expect(w.counts.groupUnseen).toBe(2);
});

test('a write read during the run but missing from the final read is lost, even above the final end', () => {
  const v = check(history([send(0, 0), send(1, 1)], [[0, 'v0']], [[[0, 'v0'], [1, 'v1']]]));
  expect(v.counts.lost).toBe(1);
  expect(v.anomalies[0]?.detail).toContain('gone from the final read');
  // Everything gone (every replica lost it): all lost, none merely unseen.
  expect(check(history([send(0, 0), send(1, 1)], [], [[[0, 'v0'], [1, 'v1']]])).counts).toMatchObject({ lost: 2, unseen: 0 });
});
