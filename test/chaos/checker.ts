/**
 * The chaos checker: a pure function over the recorded history (sends with outcomes, run-time
 * polls, final reads), in the vocabulary of ../../../shared/SCENARIOS.md (Jepsen's queue
 * workload):
 *  - lost: acknowledged and missing from the final read, where either the final read passed its
 *    offset, or some reader saw it earlier (it was there and is gone), or nobody ever read it and
 *    it lies below the highest offset read (Jepsen's definition);
 *  - unseen: acknowledged, not in the final read, never read, above every offset read;
 *  - duplicated: one value at two offsets;
 *  - inconsistent: one offset holding two values across readers (an acknowledgement counts as an
 *    observation of its offset);
 *  - reordered (nonmonotonic-send): one producer's values in a partition not in sequence order;
 *  - pollSkips / nonmonotonicPolls: a run-time reader jumped over offsets or went backwards;
 *  - phantom: a value read that was never sent;
 *  - consumer group (when it ran): commit-backwards (a partition's successful commits, in
 *    completion order, going down), group-poll-skip / group-nonmonotonic-poll (a member jumped
 *    or went back within one assignment; its first offset after an assignment may not pass the
 *    highest commit so far), group-unseen (acknowledged, never consumed by the group).
 * Offsets of a non-compacted partition are contiguous, so a reader's jump is a skip.
 */
import type { History } from './workload';

export interface Anomaly {
  kind: 'lost' | 'unseen' | 'duplicated' | 'inconsistent' | 'reordered' | 'poll-skip' | 'nonmonotonic-poll' | 'phantom' | 'commit-backwards' | 'group-poll-skip' | 'group-nonmonotonic-poll' | 'group-unseen';
  partition: string;
  detail: string;
}

export interface Verdict {
  valid: boolean;
  counts: {
    sends: number;
    acked: number;
    indeterminate: number;
    read: number;
    lost: number;
    unseen: number;
    duplicated: number;
    inconsistent: number;
    reordered: number;
    pollSkips: number;
    nonmonotonicPolls: number;
    phantom: number;
    groupRead: number;
    commitsBackwards: number;
    groupPollSkips: number;
    groupNonmonotonicPolls: number;
    groupUnseen: number;
  };
  anomalies: Anomaly[];
}

export function check(history: History): Verdict {
  const anomalies: Anomaly[] = [];
  const sent = new Map<string, { seq: number; producerId: number; partition: string }>();
  for (const s of history.sends) sent.set(s.value, { seq: s.seq, producerId: s.producerId, partition: `${s.topic}/${s.partition}` });

  // Every observation of (partition, offset) -> value: acknowledgements, polls, final reads.
  const byOffset = new Map<string, Map<number, Set<string>>>();
  const observe = (part: string, offset: number, value: string): void => {
    let m = byOffset.get(part);
    if (m === undefined) byOffset.set(part, (m = new Map()));
    let vs = m.get(offset);
    if (vs === undefined) m.set(offset, (vs = new Set()));
    vs.add(value);
  };
  for (const s of history.sends) if (s.outcome === 'ok') observe(`${s.topic}/${s.partition}`, s.offset, s.value);
  const readValues = new Map<string, Set<string>>();
  const maxRead = new Map<string, number>();
  const noteRead = (part: string, offset: number, value: string): void => {
    observe(part, offset, value);
    let set = readValues.get(part);
    if (set === undefined) readValues.set(part, (set = new Set()));
    set.add(value);
    maxRead.set(part, Math.max(maxRead.get(part) ?? -1, offset));
  };
  for (const poll of history.polls) for (const [o, v] of poll.records) noteRead(`${poll.topic}/${poll.partition}`, o, v);
  for (const [part, recs] of Object.entries(history.finalReads)) for (const [o, v] of recs) noteRead(part, o, v);
  const groupValues = new Set<string>();
  for (const poll of history.group?.polls ?? []) {
    for (const [t, p, o, v] of poll.records) {
      noteRead(`${t}/${p}`, o, v);
      groupValues.add(v);
    }
  }

  let inconsistent = 0;
  for (const [part, m] of byOffset) {
    for (const [offset, vs] of m) {
      if (vs.size > 1) {
        inconsistent++;
        anomalies.push({ kind: 'inconsistent', partition: part, detail: `offset ${offset} holds ${[...vs].join(' | ')}` });
      }
    }
  }

  // Duplicates: one value at two offsets (any observation).
  let duplicated = 0;
  for (const [part, m] of byOffset) {
    const at = new Map<string, number[]>();
    for (const [offset, vs] of m) for (const v of vs) at.set(v, [...(at.get(v) ?? []), offset]);
    for (const [v, offsets] of at) {
      if (offsets.length > 1) {
        duplicated++;
        anomalies.push({ kind: 'duplicated', partition: part, detail: `${v} at offsets ${offsets.sort((a, b) => a - b).join(', ')}` });
      }
    }
  }

  // Phantoms: read, never sent (or sent to another partition).
  let phantom = 0;
  for (const [part, vs] of readValues) {
    for (const v of vs) {
      const s = sent.get(v);
      if (s === undefined || s.partition !== part) {
        phantom++;
        anomalies.push({ kind: 'phantom', partition: part, detail: `${v} was read but never sent to this partition` });
      }
    }
  }

  // Lost / unseen acknowledged writes, judged against the final read.
  const finalValues = new Map<string, Set<string>>();
  const finalMaxOffset = new Map<string, number>();
  for (const [part, recs] of Object.entries(history.finalReads)) {
    finalValues.set(part, new Set(recs.map(([, v]) => v)));
    finalMaxOffset.set(part, Math.max(-1, ...recs.map(([o]) => o)));
  }
  let acked = 0;
  let lost = 0;
  let unseen = 0;
  for (const s of history.sends) {
    if (s.outcome !== 'ok') continue;
    acked++;
    const part = `${s.topic}/${s.partition}`;
    const fin = finalValues.get(part);
    if (fin?.has(s.value)) continue;
    const seenBefore = readValues.get(part)?.has(s.value) ?? false;
    const finalMax = finalMaxOffset.get(part) ?? -1;
    if (s.offset <= finalMax || seenBefore || s.offset <= (maxRead.get(part) ?? -1)) {
      lost++;
      const why = seenBefore ? 'was read during the run but is gone from the final read' : s.offset <= finalMax ? `is missing from the final read (which reached offset ${finalMax})` : 'was never read';
      anomalies.push({ kind: 'lost', partition: part, detail: `${s.value} acknowledged at offset ${s.offset} (t=${Math.round(s.end)} ms) ${why}` });
    } else {
      unseen++;
      anomalies.push({ kind: 'unseen', partition: part, detail: `${s.value} acknowledged at offset ${s.offset} (t=${Math.round(s.end)} ms), above every offset read (${maxRead.get(part) ?? -1})` });
    }
  }

  // Reordering: per partition, in offset order (the final read, else the merged observations),
  // each producer's sequence numbers must increase.
  let reordered = 0;
  for (const [part, m] of byOffset) {
    const lastSeq = new Map<number, { seq: number; offset: number }>();
    for (const offset of [...m.keys()].sort((a, b) => a - b)) {
      const vs = m.get(offset) as Set<string>;
      if (vs.size !== 1) continue; // reported as inconsistent
      const s = sent.get([...vs][0] as string);
      if (s === undefined) continue;
      const prev = lastSeq.get(s.producerId);
      if (prev !== undefined && s.seq <= prev.seq) {
        reordered++;
        anomalies.push({ kind: 'reordered', partition: part, detail: `producer ${s.producerId} seq ${s.seq} at offset ${offset} after seq ${prev.seq} at offset ${prev.offset}` });
      }
      if (prev === undefined || s.seq > prev.seq) lastSeq.set(s.producerId, { seq: s.seq, offset });
    }
  }

  // Run-time readers: each poll continues where the last ended, offsets contiguous within it.
  let pollSkips = 0;
  let nonmonotonicPolls = 0;
  const readerNext = new Map<string, number>();
  for (const poll of history.polls) {
    let expected = readerNext.get(poll.reader) ?? 0;
    for (const [o] of poll.records) {
      if (o > expected) {
        pollSkips++;
        anomalies.push({ kind: 'poll-skip', partition: `${poll.topic}/${poll.partition}`, detail: `${poll.reader} jumped from ${expected} to ${o} at t=${Math.round(poll.time)} ms` });
      } else if (o < expected) {
        nonmonotonicPolls++;
        anomalies.push({ kind: 'nonmonotonic-poll', partition: `${poll.topic}/${poll.partition}`, detail: `${poll.reader} went back from ${expected} to ${o} at t=${Math.round(poll.time)} ms` });
      }
      expected = o + 1;
    }
    readerNext.set(poll.reader, expected);
  }

  // Consumer group.
  let commitsBackwards = 0;
  let groupPollSkips = 0;
  let groupNonmonotonicPolls = 0;
  let groupUnseen = 0;
  if (history.group !== undefined) {
    const g = history.group;
    const okCommits = g.commits.filter((c) => c.ok).sort((a, b) => a.end - b.end);
    const highest = new Map<string, number>();
    for (const c of okCommits) {
      const k = `${c.topic}/${c.partition}`;
      const h = highest.get(k) ?? -1;
      if (c.offset < h) {
        commitsBackwards++;
        anomalies.push({ kind: 'commit-backwards', partition: k, detail: `${c.member} committed ${c.offset} at t=${Math.round(c.end)} ms after ${h} was committed` });
      }
      highest.set(k, Math.max(h, c.offset));
    }
    const committedBefore = (k: string, t: number): number => Math.max(0, ...okCommits.filter((c) => c.end <= t && `${c.topic}/${c.partition}` === k).map((c) => c.offset));
    type Step = { time: number; order: number; ev?: (typeof g.events)[number]; poll?: (typeof g.polls)[number] };
    const steps: Step[] = [...g.events.map((ev, i) => ({ time: ev.time, order: i, ev })), ...g.polls.map((poll, i) => ({ time: poll.time, order: g.events.length + i, poll }))].sort((a, b) => a.time - b.time || a.order - b.order);
    const expected = new Map<string, number | undefined>();
    for (const st of steps) {
      if (st.ev !== undefined) {
        if (st.ev.kind === 'assigned') for (const p of st.ev.partitions) expected.set(`${st.ev.member}|${p}`, undefined);
        continue;
      }
      const poll = st.poll as (typeof g.polls)[number];
      for (const [t, p, o] of poll.records) {
        const part = `${t}/${p}`;
        const key = `${poll.member}|${part}`;
        const exp = expected.get(key);
        if (exp === undefined) {
          const c = committedBefore(part, poll.time);
          if (o > c) {
            groupPollSkips++;
            anomalies.push({ kind: 'group-poll-skip', partition: part, detail: `${poll.member} started at ${o} after an assignment, but the highest commit was ${c} (t=${Math.round(poll.time)} ms)` });
          }
        } else if (o > exp) {
          groupPollSkips++;
          anomalies.push({ kind: 'group-poll-skip', partition: part, detail: `${poll.member} jumped from ${exp} to ${o} (t=${Math.round(poll.time)} ms)` });
        } else if (o < exp) {
          groupNonmonotonicPolls++;
          anomalies.push({ kind: 'group-nonmonotonic-poll', partition: part, detail: `${poll.member} went back from ${exp} to ${o} within one assignment (t=${Math.round(poll.time)} ms)` });
        }
        expected.set(key, o + 1);
      }
    }
    for (const s of history.sends) {
      if (s.outcome === 'ok' && !groupValues.has(s.value)) {
        groupUnseen++;
        if (groupUnseen <= 50) anomalies.push({ kind: 'group-unseen', partition: `${s.topic}/${s.partition}`, detail: `${s.value} (offset ${s.offset}) was never consumed by the group` });
      }
    }
  }

  const read = [...readValues.values()].reduce((n, s) => n + s.size, 0);
  const counts = { sends: history.sends.length, acked, indeterminate: history.sends.length - acked, read, lost, unseen, duplicated, inconsistent, reordered, pollSkips, nonmonotonicPolls, phantom, groupRead: groupValues.size, commitsBackwards, groupPollSkips, groupNonmonotonicPolls, groupUnseen };
  return { valid: anomalies.length === 0, counts, anomalies };
}
