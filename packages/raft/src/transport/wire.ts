// Conversion between the core's Message and the generated protobuf RaftMessage
// (proto/raft.proto). Inbound messages are validated here, at the edge: a message whose numbers
// are not safe non-negative integers, or whose type is unknown, is rejected rather than handed
// to the core, where it could only be a bug.

import { RaftEntry, RaftEntryType, RaftMessage, RaftMessageType } from '@strand/protocol';
import { Entry, EntryType, Message, MessageType, SnapshotChunk } from '../core/types';

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

const MESSAGE_TYPES = new Set<number>(Object.values(MessageType).filter((v): v is number => typeof v === 'number'));

function u(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new WireError(`raft wire: ${name} is not a safe non-negative integer: ${v}`);
  return v;
}

export function toWire(m: Message): RaftMessage {
  const s = m.snapshot;
  return {
    type: m.type as number as RaftMessageType,
    from: m.from,
    to: m.to,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map(
      (e): RaftEntry => ({ index: e.index, term: e.term, type: e.type === EntryType.ConfChange ? RaftEntryType.RAFT_ENTRY_CONF_CHANGE : RaftEntryType.RAFT_ENTRY_NORMAL, data: e.data }),
    ),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context,
    snapshot:
      s === null
        ? null
        : {
            meta: {
              index: s.meta.index,
              term: s.meta.term,
              confState: {
                voters: [...s.meta.confState.voters],
                learners: [...s.meta.confState.learners],
                contexts: Object.entries(s.meta.confState.contexts ?? {}).map(([nodeId, context]) => ({ nodeId, context })),
              },
            },
            offset: s.offset,
            totalBytes: s.totalBytes,
            data: s.data,
          },
  };
}

export function fromWire(w: RaftMessage): Message {
  if (!MESSAGE_TYPES.has(w.type)) throw new WireError(`raft wire: unknown message type ${w.type}`);
  if (w.from === '' || w.to === '') throw new WireError('raft wire: empty from/to');
  const entries: Entry[] = w.entries.map((e) => {
    if (e.type !== RaftEntryType.RAFT_ENTRY_NORMAL && e.type !== RaftEntryType.RAFT_ENTRY_CONF_CHANGE) throw new WireError(`raft wire: unknown entry type ${e.type}`);
    return { index: u('entry.index', e.index), term: u('entry.term', e.term), type: e.type === RaftEntryType.RAFT_ENTRY_CONF_CHANGE ? EntryType.ConfChange : EntryType.Normal, data: e.data };
  });
  if (entries.length > 0 && entries[0]?.index !== w.index + 1) throw new WireError('raft wire: entries do not follow index');
  for (let i = 1; i < entries.length; i++) {
    if ((entries[i]?.index ?? 0) !== (entries[i - 1]?.index ?? 0) + 1) throw new WireError('raft wire: entries not contiguous');
  }
  let snapshot: SnapshotChunk | null = null;
  if (w.snapshot !== null) {
    const s = w.snapshot;
    if (s.meta === null || s.meta.confState === null) throw new WireError('raft wire: snapshot chunk without meta');
    const offset = u('snapshot.offset', s.offset);
    const totalBytes = u('snapshot.totalBytes', s.totalBytes);
    if (offset + s.data.byteLength > totalBytes) throw new WireError('raft wire: snapshot chunk beyond its total size');
    const cs = s.meta.confState;
    const members = new Set([...cs.voters, ...cs.learners]);
    const contexts: Record<string, string> = {};
    for (const c of cs.contexts) {
      if (!members.has(c.nodeId)) throw new WireError(`raft wire: snapshot context for non-member ${c.nodeId}`);
      contexts[c.nodeId] = c.context;
    }
    snapshot = {
      meta: {
        index: u('snapshot.index', s.meta.index),
        term: u('snapshot.term', s.meta.term),
        confState: cs.contexts.length === 0 ? { voters: cs.voters, learners: cs.learners } : { voters: cs.voters, learners: cs.learners, contexts },
      },
      offset,
      totalBytes,
      data: s.data,
    };
  }
  return {
    type: w.type as number as MessageType,
    from: w.from,
    to: w.to,
    term: u('term', w.term),
    logTerm: u('logTerm', w.logTerm),
    index: u('index', w.index),
    entries,
    commit: u('commit', w.commit),
    reject: w.reject,
    rejectHint: u('rejectHint', w.rejectHint),
    context: u('context', w.context),
    snapshot,
  };
}
