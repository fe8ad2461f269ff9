/**
 * The diagnoses of one notebook's kernel, as the sidebar lists them: plain data and a changed signal,
 * testable without a browser. Statuses: new (current, can be applied), applied, stale (the kernel
 * restarted, or a target cell changed since) and superseded (a newer diagnosis of the same cell).
 */
import { type ISignal, Signal } from '@lumino/signaling';

import type { IFixView, IPanelState } from '../panel/wire';
import type { ITrans } from './trans';

export type DiagnosisStatus = 'new' | 'applied' | 'stale' | 'superseded';

export interface IDiagnosisEntry {
  readonly state: IPanelState;
  readonly status: DiagnosisStatus;
  /** Why the entry is stale or superseded. */
  readonly reason: string;
  /** The fix applied by this extension, while status is applied. */
  readonly appliedFix: number | null;
  /** The fix the sidebar's Apply button applies. */
  readonly chosenFix: number;
  /** The last Apply/Undo outcome, shown under the entry. */
  readonly message: string;
  /** The kernel restarted since the diagnosis arrived. */
  readonly restarted: boolean;
}

type Entry = { -readonly [K in keyof IDiagnosisEntry]: IDiagnosisEntry[K] } & { editStale: boolean };

/** Where a diagnosis failed: a newer diagnosis of the same place supersedes it. */
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

  /** Newest first. */
  get entries(): readonly IDiagnosisEntry[] {
    return this.items;
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
    return this.items.find(e => e.state.id === this.selectedId) ?? null;
  }

  /** The selected entry, else the newest one that can be applied. */
  get current(): IDiagnosisEntry | null {
    return this.selected ?? this.items.find(e => e.status === 'new') ?? null;
  }

  find(id: string): IDiagnosisEntry | null {
    return this.items.find(e => e.state.id === id) ?? null;
  }

  /** A diagnosis from the kernel: it supersedes the older current ones of the same place. */
  add(state: IPanelState, trans: ITrans): void {
    const known = this.items.find(e => e.state.id === state.id);
    if (known) {
      // the very same diagnosis again (the cell failed the same way): it is current once more
      known.state = state;
      if (known.status !== 'applied') {
        Object.assign(known, { status: 'new', reason: '', restarted: false, editStale: false });
      }
      this.changedSignal.emit();
      return;
    }
    const place = placeOf(state);
    for (const old of this.items) {
      if (place !== null && placeOf(old.state) === place && (old.status === 'new' || old.editStale)) {
        old.status = 'superseded';
        old.editStale = false;
        old.reason = trans.__('A newer diagnosis of the same cell replaced this one.');
      }
    }
    this.items.unshift({
      state,
      status: 'new',
      reason: '',
      appliedFix: null,
      chosenFix: 0,
      message: '',
      restarted: false,
      editStale: false
    });
    this.changedSignal.emit();
  }

  /** The kernel restarted (or was replaced): nothing it diagnosed can be applied any more. */
  kernelRestarted(trans: ITrans): void {
    for (const entry of this.items) {
      entry.restarted = true;
      if (entry.status === 'new' || entry.editStale) {
        entry.status = 'stale';
        entry.editStale = false;
        entry.reason = trans.__(
          'The kernel restarted since this diagnosis; re-run the cells to diagnose again.'
        );
      }
    }
    if (this.items.length) {
      this.changedSignal.emit();
    }
  }

  /**
   * Re-check the current entries against the notebook: `check` says why an entry's fix no longer
   * matches its cells (stale), or null. An entry whose cells match again is current again.
   */
  recheck(check: (entry: IDiagnosisEntry) => string | null): void {
    let changed = false;
    for (const entry of this.items) {
      if (entry.status !== 'new' && !entry.editStale) {
        continue;
      }
      const reason = check(entry);
      const status = reason === null ? 'new' : 'stale';
      if (status !== entry.status || (reason ?? '') !== entry.reason) {
        Object.assign(entry, { status, reason: reason ?? '', editStale: reason !== null });
        changed = true;
      }
    }
    if (changed) {
      this.changedSignal.emit();
    }
  }

  markApplied(id: string, fixIndex: number, message: string): void {
    this.update(id, { status: 'applied', appliedFix: fixIndex, message, reason: '', editStale: false });
  }

  markUndone(id: string, message: string, trans: ITrans): void {
    const entry = this.items.find(e => e.state.id === id);
    if (entry) {
      const reason = entry.restarted
        ? trans.__('The kernel restarted since this diagnosis; re-run the cells to diagnose again.')
        : '';
      this.update(id, { status: entry.restarted ? 'stale' : 'new', appliedFix: null, message, reason });
    }
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

  clear(): void {
    this.items = [];
    this.selectedId = null;
    this.problemText = null;
    this.changedSignal.emit();
  }

  private update(id: string, patch: Partial<Entry>): void {
    const entry = this.items.find(e => e.state.id === id);
    if (entry) {
      Object.assign(entry, patch);
      this.changedSignal.emit();
    }
  }
}

/** Why `entry` cannot be applied now, or null when it can. */
export function applyRefusal(entry: IDiagnosisEntry, trans: ITrans): string | null {
  switch (entry.status) {
    case 'new':
      return entry.state.fixes.length ? null : trans.__('This diagnosis has no fix to apply.');
    case 'applied':
      return trans.__('A fix of this diagnosis is already applied; undo it first.');
    case 'superseded':
      return trans.__('A newer diagnosis of the same cell replaced this one: apply that one.');
    case 'stale':
      return entry.reason || trans.__('This diagnosis is out of date; re-run the cell.');
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
