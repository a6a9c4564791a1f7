// Interaction tests in the spirit of etcd-io/raft's datadriven testdata (our own format and
// code): a script drives a set of pure RaftCores, and everything they do — Readies (state,
// hard state, entries, snapshot, committed entries, read states, messages) and message
// deliveries — is written as a transcript that is compared with the expected output checked in
// next to the command. Deterministic: no clock, a seeded Rng per node, FIFO delivery.
//
// File format: blocks of
//
//   <command> [args...]            (lines starting with # are comments)
//   ----
//   <expected output, no blank lines; "ok" when the command prints nothing>
//   <blank line>
//
// Commands:
//   add-nodes <ids...> voters=(a,b,c) [learners=(d)] [prevote=false] [checkquorum=false]
//             [election=10] [heartbeat=1] [inflight=256] [maxents=4096] [chunk=262144]
//   campaign <id>                  tick-election/timeout without waiting (RaftCore.campaign)
//   tick <id|all> [n]              n ticks (default 1)
//   propose <id> <data>
//   conf-change <id> add-learner|add-voter|remove <node>
//   transfer-leadership <from> <to>
//   read-index <id> <request id>
//   process-ready <ids|all> [async] handle each node's Ready: persist, queue messages, apply;
//                                  with async, a Ready with mayPersistAsync is sent and applied
//                                  and its write left pending (RaftCore.advanceAsync)
//   persist <id>                   complete the node's pending writes, in order (persisted())
//   deliver-msgs <ids|all> [drop]  deliver (or drop) the messages queued for the nodes
//   stabilize [ids|all]            process-ready and deliver-msgs until nothing is left
//   isolate <id> / heal            cut a node off (its messages are dropped on delivery)
//   compact <id>                   snapshot the state machine at the applied index, compact
//   crash <id> / restart <id>      lose everything not persisted / start from what was
//   status <id>                    role, term, leader, commit, applied, membership, progress
//   log <id>                       the node's log (snapshot index, entries)

import { RaftCore, RaftInitialState, bootstrapState, joinerState } from '../../src/core/raft';
import { SeededRng } from '../../src/core/rng';
import { decodeConfChange } from '../../src/core/conf-change';
import { ConfChangeType, Entry, EntryType, HardState, Message, MessageType, NodeId, Ready, Snapshot } from '../../src/core/types';

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface Block {
  readonly line: number;
  readonly command: string;
  readonly expected: string;
}

export function parseScript(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i] ?? '';
    if (l.trim() === '' || l.startsWith('#')) {
      i++;
      continue;
    }
    const line = i + 1;
    const command = l.trim();
    i++;
    if ((lines[i] ?? '') !== '----') throw new Error(`line ${line}: expected ---- after the command`);
    i++;
    const out: string[] = [];
    while (i < lines.length && (lines[i] ?? '') !== '') out.push(lines[i++] ?? '');
    blocks.push({ line, command, expected: out.join('\n') });
  }
  return blocks;
}

export function formatScript(blocks: ReadonlyArray<{ command: string; output: string }>, comments: Map<number, string[]>): string {
  const parts: string[] = [];
  blocks.forEach((b, k) => {
    for (const c of comments.get(k) ?? []) parts.push(c);
    parts.push(`${b.command}\n----\n${b.output}\n`);
  });
  return parts.join('\n');
}

/** Comment lines preceding each block (kept when golden files are rewritten). */
export function blockComments(text: string): Map<number, string[]> {
  const out = new Map<number, string[]>();
  const lines = text.split('\n');
  let pending: string[] = [];
  let k = 0;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] ?? '';
    if (l.startsWith('#')) pending.push(l);
    else if (l.trim() !== '' && (lines[i + 1] ?? '') === '----') {
      if (pending.length > 0) out.set(k, pending);
      pending = [];
      k++;
      i++;
      while (i + 1 < lines.length && (lines[i + 1] ?? '') !== '') i++;
    }
  }
  return out;
}

function entryStr(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChange(e.data);
    return `${e.term}/${e.index} ${ConfChangeType[cc.type]} ${cc.nodeId}`;
  }
  return e.data.byteLength === 0 ? `${e.term}/${e.index} EntryNormal ""` : `${e.term}/${e.index} EntryNormal "${dec.decode(e.data)}"`;
}

export function msgStr(m: Message): string {
  const head = `${m.from}->${m.to} ${MessageType[m.type]} Term:${m.term}`;
  switch (m.type) {
    case MessageType.App:
      return `${head} Log:${m.logTerm}/${m.index} Commit:${m.commit}${m.entries.length > 0 ? ` Entries:[${m.entries.map(entryStr).join(', ')}]` : ''}`;
    case MessageType.AppResp:
      return m.reject ? `${head} Log:${m.logTerm}/${m.index} Rejected (Hint: ${m.rejectHint})` : `${head} Log:0/${m.index}`;
    case MessageType.Vote:
    case MessageType.PreVote:
      return `${head} Log:${m.logTerm}/${m.index}${m.context !== 0 ? ' Transfer' : ''}`;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      return `${head}${m.reject ? ' Rejected' : ''}`;
    case MessageType.Heartbeat:
      return `${head} Commit:${m.commit}${m.context !== 0 ? ` Context:${m.context}` : ''}`;
    case MessageType.HeartbeatResp:
      return `${head}${m.context !== 0 ? ` Context:${m.context}` : ''}`;
    case MessageType.Snap: {
      const c = m.snapshot;
      return c === null ? head : `${head} Snapshot:${c.meta.term}/${c.meta.index} Voters:(${c.meta.confState.voters.join(',')}) Learners:(${c.meta.confState.learners.join(',')}) Chunk:${c.offset}+${c.data.byteLength}/${c.totalBytes}`;
    }
    case MessageType.SnapResp:
      return `${head} Snapshot:${m.index} Next:${m.rejectHint}${m.reject ? ' Rejected' : ''}`;
    case MessageType.ReadIndex:
      return `${head} Request:${m.context}`;
    case MessageType.ReadIndexResp:
      return `${head} Request:${m.context} Index:${m.index}`;
    default:
      return head;
  }
}

interface Durable {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
}

interface Node {
  readonly id: NodeId;
  core: RaftCore | null;
  readonly durable: Durable;
  /** Applied normal entries (index:data), the state machine. */
  applied: string[];
  /** Background writes not completed yet (process-ready ... async). */
  pending: Array<{ entries: readonly Entry[]; hardState: HardState | null }>;
  readonly opts: Record<string, number | boolean>;
  readonly rng: SeededRng;
}

function smData(applied: readonly string[]): Uint8Array {
  return enc.encode(JSON.stringify(applied));
}

export class Interaction {
  private readonly nodes = new Map<NodeId, Node>();
  private readonly order: NodeId[] = [];
  /** Messages in flight, FIFO. */
  private inflight: Message[] = [];
  private readonly isolated = new Set<NodeId>();

  run(command: string): string {
    const [cmd = '', ...args] = command.split(/\s+/);
    const out: string[] = [];
    switch (cmd) {
      case 'add-nodes':
        this.addNodes(args);
        break;
      case 'campaign':
        this.core(args[0]).campaign();
        break;
      case 'tick': {
        const n = Number(args[1] ?? '1');
        for (const id of this.targets(args[0])) for (let i = 0; i < n; i++) this.nodes.get(id)?.core?.tick();
        break;
      }
      case 'propose': {
        const r = this.core(args[0]).propose([enc.encode(args.slice(1).join(' '))]);
        if (!r.ok) out.push(`refused: ${r.reason} (${r.detail})`);
        break;
      }
      case 'conf-change': {
        const kinds: Record<string, ConfChangeType> = { 'add-learner': ConfChangeType.AddLearner, 'add-voter': ConfChangeType.AddVoter, remove: ConfChangeType.RemoveNode };
        const type = kinds[args[1] ?? ''];
        if (type === undefined) throw new Error(`conf-change: unknown kind ${args[1] ?? ''}`);
        const r = this.core(args[0]).proposeConfChange({ type, nodeId: args[2] ?? '' });
        if (!r.ok) out.push(`refused: ${r.reason} (${r.detail})`);
        break;
      }
      case 'transfer-leadership':
        this.core(args[0]).transferLeadership(args[1] ?? '');
        break;
      case 'read-index':
        if (!this.core(args[0]).readIndex(Number(args[1]))) out.push('refused: no leader known');
        break;
      case 'process-ready':
        for (const id of this.targets(args[0])) this.processReady(id, out, args[1] === 'async');
        break;
      case 'persist': {
        const n = this.node(args[0]);
        const core = this.core(args[0]);
        const writes = n.pending;
        n.pending = [];
        for (const w of writes) {
          this.writeDurable(n, w.entries, w.hardState);
          const last = w.entries[w.entries.length - 1];
          if (last !== undefined) {
            core.persisted(last.index, last.term);
            out.push(`${n.id} persisted up to ${last.term}/${last.index}`);
          }
        }
        if (writes.length === 0) out.push(`${n.id} has no pending writes`);
        break;
      }
      case 'deliver-msgs':
        for (const id of this.targets(args[0])) this.deliver(id, args[1] === 'drop', out);
        break;
      case 'stabilize':
        this.stabilize(this.targets(args[0]), out);
        break;
      case 'isolate':
        this.isolated.add(args[0] ?? '');
        break;
      case 'heal':
        this.isolated.clear();
        break;
      case 'compact': {
        const n = this.node(args[0]);
        const core = this.core(args[0]);
        const snap = core.compact(smData(n.applied));
        n.durable.snapshot = snap;
        n.durable.entries = n.durable.entries.filter((e) => e.index > snap.meta.index);
        out.push(`${n.id} compacted to ${snap.meta.term}/${snap.meta.index}; log starts at ${core.log.firstIndex()}`);
        break;
      }
      case 'crash': {
        const n = this.node(args[0]);
        n.core = null;
        n.pending = [];
        this.inflight = this.inflight.filter((m) => m.to !== n.id);
        out.push(`${n.id} crashed (persisted: term ${n.durable.hardState.term}, vote ${n.durable.hardState.vote || '-'}, last index ${n.durable.snapshot.meta.index + n.durable.entries.length})`);
        break;
      }
      case 'restart': {
        const n = this.node(args[0]);
        this.start(n, { hardState: n.durable.hardState, snapshot: n.durable.snapshot, entries: [...n.durable.entries] });
        break;
      }
      case 'status':
        out.push(this.status(args[0]));
        break;
      case 'log': {
        const core = this.core(args[0]);
        const s = core.log.snapshot.meta;
        out.push(`snapshot ${s.term}/${s.index}; committed ${core.log.committed}, applied ${core.log.applied}`);
        for (let i = core.log.firstIndex(); i <= core.log.lastIndex(); i++) {
          const e = core.log.entry(i);
          if (e !== undefined) out.push(entryStr(e));
        }
        break;
      }
      default:
        throw new Error(`unknown command ${cmd}`);
    }
    return out.length === 0 ? 'ok' : out.join('\n');
  }

  private addNodes(args: string[]): void {
    const ids: NodeId[] = [];
    const kv = new Map<string, string>();
    for (const a of args) {
      const i = a.indexOf('=');
      if (i < 0) ids.push(a);
      else kv.set(a.slice(0, i), a.slice(i + 1));
    }
    const list = (k: string): NodeId[] => (kv.get(k) ?? '').replace(/[()]/g, '').split(',').filter((x) => x !== '');
    const voters = list('voters');
    const num = (k: string): number | undefined => (kv.has(k) ? Number(kv.get(k)) : undefined);
    const bool = (k: string): boolean | undefined => (kv.has(k) ? kv.get(k) === 'true' : undefined);
    for (const id of ids) {
      const init = voters.includes(id) ? bootstrapState(voters) : joinerState();
      const opts: Record<string, number | boolean> = {};
      const set = (k: string, v: number | boolean | undefined): void => {
        if (v !== undefined) opts[k] = v;
      };
      set('electionTicks', num('election'));
      set('heartbeatTicks', num('heartbeat'));
      set('maxInflight', num('inflight'));
      set('maxEntriesPerMsg', num('maxents'));
      set('snapshotChunkBytes', num('chunk'));
      set('preVote', bool('prevote'));
      set('checkQuorum', bool('checkquorum'));
      const n: Node = { id, core: null, durable: { hardState: init.hardState, snapshot: init.snapshot, entries: [...init.entries] }, applied: [], pending: [], opts, rng: new SeededRng(this.order.length + 1) };
      this.nodes.set(id, n);
      this.order.push(id);
      this.start(n, init);
    }
  }

  private start(n: Node, init: RaftInitialState): void {
    n.core = new RaftCore({ ...n.opts, id: n.id, rng: n.rng.fork() } as ConstructorParameters<typeof RaftCore>[0], init);
    const snap = init.snapshot;
    n.applied = snap.meta.index > 0 ? (JSON.parse(dec.decode(snap.data)) as string[]) : [];
  }

  private node(id: string | undefined): Node {
    const n = this.nodes.get(id ?? '');
    if (n === undefined) throw new Error(`no node ${id ?? ''}`);
    return n;
  }

  private core(id: string | undefined): RaftCore {
    const c = this.node(id).core;
    if (c === null) throw new Error(`${id ?? ''} is down`);
    return c;
  }

  private targets(arg: string | undefined): NodeId[] {
    if (arg === undefined || arg === 'all') return this.order.filter((id) => this.nodes.get(id)?.core !== null);
    return arg.split(',');
  }

  private writeDurable(n: Node, entries: readonly Entry[], hardState: HardState | null): void {
    const d = n.durable;
    const first = entries[0]?.index;
    if (first !== undefined) d.entries = [...d.entries.filter((e) => e.index < first), ...entries];
    if (hardState !== null) d.hardState = hardState;
  }

  private processReady(id: NodeId, out: string[], async = false): boolean {
    const n = this.node(id);
    const core = n.core;
    if (core === null || !core.hasReady()) return false;
    const rd: Ready = core.ready();
    const inBackground = async && rd.mayPersistAsync;
    out.push(`> ${id} handling Ready${inBackground ? ' (write in the background)' : ''}`);
    if (rd.softState !== null) out.push(`  State: ${rd.softState.role}, term ${rd.softState.term}, leader ${rd.softState.leader || '-'}`);
    if (rd.hardState !== null) out.push(`  HardState: term ${rd.hardState.term}, vote ${rd.hardState.vote || '-'}, commit ${rd.hardState.commit}`);
    if (rd.entries.length > 0) out.push(`  Entries: ${rd.entries.map(entryStr).join(', ')}`);
    if (rd.snapshot !== null) out.push(`  Snapshot: ${rd.snapshot.meta.term}/${rd.snapshot.meta.index} Voters:(${rd.snapshot.meta.confState.voters.join(',')}) Learners:(${rd.snapshot.meta.confState.learners.join(',')})`);
    if (rd.committedEntries.length > 0) out.push(`  Committed: ${rd.committedEntries.map(entryStr).join(', ')}`);
    for (const r of rd.readStates) out.push(`  ReadState: request ${r.requestId} at index ${r.index}`);
    if (rd.messages.length > 0) {
      out.push('  Messages:');
      for (const m of rd.messages) out.push(`    ${msgStr(m)}`);
    }
    if (inBackground) {
      this.inflight.push(...rd.messages);
      if (rd.entries.length > 0 || rd.hardState !== null) n.pending.push({ entries: rd.entries, hardState: rd.hardState });
      for (const e of rd.committedEntries) if (e.type === EntryType.Normal && e.data.byteLength > 0) n.applied.push(`${e.index}:${dec.decode(e.data)}`);
      core.advanceAsync();
      return true;
    }
    // Persist (after any background writes), send, apply (the synchronous contract).
    const flushed = n.pending;
    n.pending = [];
    for (const w of flushed) this.writeDurable(n, w.entries, w.hardState);
    const d = n.durable;
    if (rd.snapshot !== null) {
      d.snapshot = rd.snapshot;
      d.entries = [];
      n.applied = JSON.parse(dec.decode(rd.snapshot.data)) as string[];
    }
    this.writeDurable(n, rd.entries, rd.hardState);
    this.inflight.push(...rd.messages);
    for (const e of rd.committedEntries) if (e.type === EntryType.Normal && e.data.byteLength > 0) n.applied.push(`${e.index}:${dec.decode(e.data)}`);
    core.advance();
    for (const w of flushed) {
      const last = w.entries[w.entries.length - 1];
      if (last !== undefined) core.persisted(last.index, last.term);
    }
    return true;
  }

  private deliver(id: NodeId, drop: boolean, out: string[]): number {
    const mine = this.inflight.filter((m) => m.to === id);
    if (mine.length === 0) return 0;
    this.inflight = this.inflight.filter((m) => m.to !== id);
    const core = this.nodes.get(id)?.core ?? null;
    for (const m of mine) {
      if (drop || core === null || this.isolated.has(m.to) || this.isolated.has(m.from)) out.push(`  dropped: ${msgStr(m)}`);
      else {
        out.push(`${msgStr(m)}`);
        core.step(m);
      }
    }
    return mine.length;
  }

  private stabilize(ids: NodeId[], out: string[]): void {
    for (let round = 0; round < 1000; round++) {
      let did = false;
      for (const id of ids) if (this.processReady(id, out)) did = true;
      for (const id of ids) if (this.deliver(id, false, out) > 0) did = true;
      if (!did) return;
    }
    throw new Error('stabilize: no quiescence after 1000 rounds');
  }

  private status(id: string | undefined): string {
    const core = this.core(id);
    const cs = core.confState();
    const lines = [
      `${core.id}: ${core.role}, term ${core.term}, leader ${core.leader || '-'}, vote ${core.vote || '-'}, commit ${core.log.committed}, applied ${core.log.applied}, last ${core.log.lastIndex()}`,
      `  voters (${cs.voters.join(',')}) learners (${cs.learners.join(',')})`,
    ];
    for (const [peer, p] of [...core.progress()].sort((a, b) => a[0].localeCompare(b[0]))) {
      lines.push(`  ${peer}: ${p.state} match=${p.match} next=${p.next}${p.isLearner ? ' learner' : ''}${p.inflight > 0 ? ` inflight=${p.inflight}` : ''}`);
    }
    const n = this.node(id);
    if (n.applied.length > 0) lines.push(`  applied: ${n.applied.join(' ')}`);
    return lines.join('\n');
  }
}
