/**
 * The diagnoses of one notebook's kernel, as the sidebar lists them: plain data and a changed signal,
 * testable without a browser. One entry per failing cell: a newer diagnosis of the same cell replaces
 * the older one. An entry's status is derived from the notebook (./session decides it from the cells'
 * actual source): new (its fix can be applied), applied (the cells hold a fix's change: the editor's
 * undo turns it back into new) or stale (a target cell changed since, or the kernel restarted).
 */
import { type ISignal, Signal } from '@lumino/signaling';

import type { IFixView, IPanelState } from '../panel/wire';
import type { ITrans } from './trans';

export type DiagnosisStatus = 'new' | 'applied' | 'stale';

export interface IDiagnosisEntry {
  readonly state: IPanelState;
  readonly status: DiagnosisStatus;
  /** Why the entry is stale. */
  readonly reason: string;
  /** The fix whose change the cells hold, while status is applied. */
  readonly appliedFix: number | null;
  /** The fix the sidebar's Apply button applies. */
  readonly chosenFix: number;
  /** The last Apply/Undo outcome, shown under the entry. */
  readonly message: string;
  /** The kernel restarted since the diagnosis arrived. */
  readonly restarted: boolean;
  /** Arrived while the sidebar was not shown: the sidebar's icon counts it. */
  readonly unseen: boolean;
  /** Dismissed from the sidebar; its panel still links to it. */
  readonly dismissed: boolean;
}

/** What the notebook says of an entry: see `DiagnosisList.recheck`. */
export interface IDerived {
  status: DiagnosisStatus;
  reason: string;
  appliedFix: number | null;
}

type Entry = { -readonly [K in keyof IDiagnosisEntry]: IDiagnosisEntry[K] };

/** Where a diagnosis failed: a newer diagnosis of the same place replaces it. */
export function placeOf(state: IPanelState): string | null {
  const where = state.error?.where;
  if (!where) {
    return null;
  }
  if (where.cell_id) {
    return `id:${where.cell_id}`;
  }
  return where.file ? `file:${where.file}` : where.cell !== undefined ? `cell:${where.cell}` : null;
}

export class DiagnosisList {
  private items: Entry[] = [];
  private selectedId: string | null = null;
  private problemText: string | null = null;
  private changedSignal = new Signal<this, void>(this);

  get changed(): ISignal<this, void> {
    return this.changedSignal;
  }

  /** Newest first, the dismissed ones left out. */
  get entries(): readonly IDiagnosisEntry[] {
    return this.items.filter(e => !e.dismissed);
  }

  /** How many shown entries arrived while the sidebar was not looking. */
  get unseen(): number {
    return this.entries.filter(e => e.unseen).length;
  }

  /** A protocol problem with the kernel (e.g. a version mismatch), shown above the list. */
  get problem(): string | null {
    return this.problemText;
  }

  set problem(value: string | null) {
    if (value !== this.problemText) {
      this.problemText = value;
      this.changedSignal.emit();
    }
  }

  get selected(): IDiagnosisEntry | null {
    return this.entries.find(e => e.state.id === this.selectedId) ?? null;
  }

  /** The selected entry, else the newest one that can be applied. */
  get current(): IDiagnosisEntry | null {
    return this.selected ?? this.entries.find(e => e.status === 'new') ?? null;
  }

  /** Any entry the kernel sent, dismissed ones included (their panels still apply through it). */
  find(id: string): IDiagnosisEntry | null {
    return this.items.find(e => e.state.id === id) ?? null;
  }

  /**
   * A diagnosis from the kernel. The same diagnosis again (a verification update, or a sync after a
   * reload) replaces its state; a new one replaces every older entry of the same cell.
   */
  add(state: IPanelState, seen: boolean): void {
    const known = this.items.find(e => e.state.id === state.id);
    if (known) {
      known.state = state;
      this.changedSignal.emit();
      return;
    }
    const place = placeOf(state);
    if (place !== null) {
      this.items = this.items.filter(old => placeOf(old.state) !== place);
    }
    this.items.unshift({
      state,
      status: 'new',
      reason: '',
      appliedFix: null,
      chosenFix: state.fixes[0]?.index ?? 0,
      message: '',
      restarted: false,
      unseen: !seen,
      dismissed: false
    });
    this.changedSignal.emit();
  }

  /** The kernel restarted (or was replaced): nothing it diagnosed before can be applied any more. */
  kernelRestarted(): void {
    for (const entry of this.items) {
      entry.restarted = true;
    }
    if (this.items.length) {
      this.changedSignal.emit();
    }
  }

  /** Derive every entry's status again from the notebook (`derive` reads the cells). */
  recheck(derive: (entry: IDiagnosisEntry) => IDerived): void {
    let changed = false;
    for (const entry of this.items) {
      const next = derive(entry);
      if (
        next.status !== entry.status ||
        next.reason !== entry.reason ||
        next.appliedFix !== entry.appliedFix
      ) {
        Object.assign(entry, next);
        changed = true;
      }
    }
    if (changed) {
      this.changedSignal.emit();
    }
  }

  /** The sidebar is shown: nothing in it is unseen any more. */
  markSeen(): void {
    const unseen = this.items.filter(e => e.unseen);
    unseen.forEach(e => (e.unseen = false));
    if (unseen.length) {
      this.changedSignal.emit();
    }
  }

  /** Leave `id` out of the list (its panel still applies its fixes). */
  dismiss(id: string): boolean {
    const entry = this.items.find(e => e.state.id === id);
    if (!entry || entry.dismissed) {
      return false;
    }
    entry.dismissed = true;
    if (this.selectedId === id) {
      this.selectedId = null;
    }
    this.changedSignal.emit();
    return true;
  }

  setMessage(id: string, message: string): void {
    this.update(id, { message });
  }

  choose(id: string, fixIndex: number): void {
    this.update(id, { chosenFix: fixIndex });
  }

  select(id: string | null): void {
    if (id !== this.selectedId) {
      this.selectedId = id;
      this.changedSignal.emit();
    }
  }

  /** Dismiss everything listed. */
  clear(): string[] {
    const ids = this.entries.map(e => e.state.id);
    this.items.forEach(e => (e.dismissed = true));
    this.selectedId = null;
    this.problemText = null;
    this.changedSignal.emit();
    return ids;
  }

  private update(id: string, patch: Partial<Entry>): void {
    const entry = this.items.find(e => e.state.id === id);
    if (entry) {
      Object.assign(entry, patch);
      this.changedSignal.emit();
    }
  }
}

/** Why fix `fixIndex` of `entry` cannot be applied now, or null when it can. */
export function applyRefusal(entry: IDiagnosisEntry, fixIndex: number, trans: ITrans): string | null {
  const fix = entry.state.fixes.find(f => f.index === fixIndex);
  if (!fix) {
    return trans.__('This diagnosis has no fix to apply.');
  }
  switch (entry.status) {
    case 'applied':
      return trans.__('A fix of this diagnosis is applied; undo it first.');
    case 'stale':
      return entry.reason || trans.__('This diagnosis is out of date; re-run the cell.');
    case 'new':
      return fix.can_apply
        ? null
        : fix.verification.detail || trans.__('The kernel does not offer this fix.');
  }
}

/**
 * The kernel-issued fix `fixIndex` of diagnosis `id`, or why there is none: the extension edits only
 * with fixes that arrived over the comm, whatever a DOM event or a command asks for.
 */
export function issuedFix(
  list: DiagnosisList,
  id: string,
  fixIndex: number,
  trans: ITrans
): { entry: IDiagnosisEntry; fix: IFixView } | { refusal: string } {
  const entry = list.find(id);
  if (!entry) {
    return {
      refusal: trans.__(
        "This fix did not come from this notebook's kernel in this session; re-run the cell to diagnose it again."
      )
    };
  }
  const fix = entry.state.fixes.find(f => f.index === fixIndex);
  return fix ? { entry, fix } : { refusal: trans.__('This diagnosis has no fix %1.', fixIndex) };
}
