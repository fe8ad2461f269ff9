/**
 * One notebook's side of the extension: its diagnosis list (filled by the kernel's comm, and asked
 * for again after a page reload), Apply and Undo through the notebook's shared model, each entry's
 * status derived from the cells' actual source, the panels linked to it (their cells' names, which
 * fix is applied), the folded tracebacks, and revealing a location. The comm is ./channel, the cells
 * ./cells and ./names, the line marks ./marks, the cell diff after Apply ./review.
 */
import type { CodeCell } from '@jupyterlab/cells';
import { CodeMirrorEditor } from '@jupyterlab/codemirror';
import { NotebookActions, type NotebookPanel } from '@jupyterlab/notebook';
import type { IDisposable } from '@lumino/disposable';
import { type ISignal, Signal } from '@lumino/signaling';

import type { ICellRef, IExtensionOutcome, ILink, ILinkDetail } from '../panel/events';
import type { IFixView, ISegment, IWhere } from '../panel/wire';
import { cellIndexOf, cellModels, cellTarget } from './cells';
import { KernelChannel } from './channel';
import {
  applyChanges,
  type IAppliedFix,
  type IChange,
  type IExpectedTarget,
  type ITargetResolver,
  type ITextTarget,
  planFix,
  sameSource,
  undoFix
} from './edits';
import { foldTraceback } from './tracebacks';
import { LineMarks } from './marks';
import {
  applyRefusal,
  DiagnosisList,
  type IDerived,
  type IDiagnosisEntry,
  issuedFix,
  placeOf
} from './model';
import { cellName, cellNames, namedText } from './names';
import { showReview } from './review';
import type { ITrans } from './trans';

export interface ISettings {
  autoDiagnose: boolean;
  highlightLines: boolean;
  autoOpen: boolean;
}

export interface ISessionOptions {
  panel: NotebookPanel;
  trans: ITrans;
  settings: () => ISettings;
  /** Open a `.py` file the kernel named (in an editor the user sees) and give its text. */
  openFile: (file: string, notebookPath: string) => Promise<ITextTarget | string>;
  /** Show a line of a `.py` file. */
  revealFile: (file: string, line: number, notebookPath: string) => Promise<string | null>;
  /** Whether the user sees this notebook's list now (else a new diagnosis counts as unseen). */
  listShown: () => boolean;
  /** A diagnosis the user has not seen arrived. */
  arrived: () => void;
}

/** What the sidebar needs from a notebook. */
export interface ISidebarSource {
  readonly list: DiagnosisList;
  readonly title: string;
  /** The cells were renamed (re-run, moved): redraw their names. */
  readonly renamed: ISignal<ISidebarSource, void>;
  apply(id: string, fixIndex: number): Promise<IExtensionOutcome>;
  undo(id: string): Promise<IExtensionOutcome>;
  dismiss(id: string): void;
  reveal(where: IWhere): Promise<void>;
  /** The segments as text, the cells named as the notebook shows them now. */
  text(parts: ISegment[]): string;
  /** A cell's name as the notebook shows it now, or null when the notebook has no such cell. */
  name(ref: { cell?: number | null; cell_id?: string | null }): string | null;
}

const RECHECK_MS = 300;

interface ILinked {
  el: EventTarget & { isConnected: boolean };
  detail: ILinkDetail;
}

export class NotebookSession implements ISidebarSource, IDisposable {
  readonly list = new DiagnosisList();
  private applied = new Map<string, IAppliedFix>();
  private channel: KernelChannel;
  private marks: LineMarks;
  private links: ILinked[] = [];
  private recheckTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;
  private renamedSignal = new Signal<ISidebarSource, void>(this);
  private watched = new WeakSet<CodeCell>();

  constructor(private options: ISessionOptions) {
    const { panel, trans } = options;
    this.channel = new KernelChannel(panel.sessionContext, () => options.settings().autoDiagnose, {
      diagnosis: state => {
        const known = this.list.find(state.id) !== null;
        const seen = options.listShown();
        this.list.add(state, seen);
        this.recheckNow(); // a diagnosis synced after a reload may find its fix applied already
        if (!known && !seen) {
          options.arrived();
        }
      },
      problem: text => (this.list.problem = text),
      restarted: () => {
        this.list.kernelRestarted();
        this.recheckNow();
      }
    });
    this.marks = new LineMarks(panel, this.list, () => options.settings().highlightLines, trans);
    panel.content.modelContentChanged.connect(this.scheduleRecheck, this);
    panel.content.cellInViewportChanged.connect(() => this.refreshMarks(), this);
    panel.content.model?.cells.changed.connect(() => this.cellsRenamed(), this);
    NotebookActions.executed.connect(this.onExecuted, this);
    this.list.changed.connect(this.onListChanged, this);
  }

  get title(): string {
    return this.options.panel.title.label;
  }

  get renamed(): ISignal<ISidebarSource, void> {
    return this.renamedSignal;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private get trans(): ITrans {
    return this.options.trans;
  }

  dispose(): void {
    if (!this.disposed) {
      this.disposed = true;
      if (this.recheckTimer !== null) {
        clearTimeout(this.recheckTimer);
      }
      NotebookActions.executed.disconnect(this.onExecuted, this);
      this.channel.dispose();
      Signal.clearData(this);
    }
  }

  settingsChanged(): void {
    this.channel.settingsChanged();
    this.refreshMarks();
  }

  text(parts: ISegment[]): string {
    return namedText(parts, cellModels(this.options.panel), this.trans);
  }

  name(ref: { cell?: number | null; cell_id?: string | null }): string | null {
    return cellName(cellModels(this.options.panel), ref, this.trans);
  }

  // -- apply and undo

  private resolver(): ITargetResolver {
    const notebookPath = this.options.panel.context.path;
    return {
      cell: target => cellTarget(this.options.panel, target, this.trans),
      file: file => this.options.openFile(file, notebookPath)
    };
  }

  async apply(id: string, fixIndex: number): Promise<IExtensionOutcome> {
    const issued = issuedFix(this.list, id, fixIndex, this.trans);
    if ('refusal' in issued) {
      return { applied: false, message: issued.refusal };
    }
    this.recheckNow();
    const refusal = applyRefusal(this.list.find(id) ?? issued.entry, fixIndex, this.trans);
    if (refusal) {
      return this.refuse(id, refusal);
    }
    const plan = await planFix(issued.entry.state, fixIndex, this.resolver(), this.trans);
    if (!plan.ok) {
      return this.refuse(id, plan.message);
    }
    applyChanges(plan.changes);
    this.applied.set(id, { diagnosisId: id, fixIndex, changes: plan.changes });
    const message = this.appliedMessage(issued.fix, plan.changes);
    this.list.setMessage(id, message);
    this.recheckNow();
    void this.showChange(id, issued.fix, plan.changes);
    return { applied: true, message };
  }

  /** One line: what was changed, what it means, what to run next. */
  private appliedMessage(fix: IFixView, changes: IChange[]): string {
    const labels = changes.map(c => c.target.label).join(', ');
    const parts = [this.trans.__('Applied to %1.', labels)];
    const semantics = fix.labels.find(l => l.tag === 'changes-semantics');
    if (semantics) {
      parts.push(this.trans.__('This fix %1.', semantics.text));
    }
    if (fix.edits.some(e => e.cell === undefined)) {
      parts.push(this.trans.__('Save the edited file to keep it.'));
    }
    parts.push(this.text(fix.rerun_parts) || fix.rerun);
    return parts.join(' ');
  }

  /** Scroll to the first changed cell, and show the change there as a diff to accept or reject. */
  private async showChange(id: string, fix: IFixView, changes: IChange[]): Promise<void> {
    const notebook = this.options.panel.content;
    const first = changes.find(c => c.target.index !== undefined);
    if (!first || first.target.index === undefined) {
      return;
    }
    const cell = notebook.widgets[first.target.index];
    if (!cell) {
      return;
    }
    notebook.deselectAll();
    notebook.activeCellIndex = first.target.index;
    await notebook.scrollToCell(cell, 'center');
    await cell.ready;
    for (const change of changes) {
      const index = change.target.index;
      const editor = index !== undefined ? notebook.widgets[index]?.editor : null;
      if (!(editor instanceof CodeMirrorEditor)) {
        continue;
      }
      showReview(editor.editor, {
        before: change.before,
        labels: {
          title: this.trans.__('inplace_magic applied: %1', fix.title.replace(/`/g, '')),
          accept: this.trans.__('Accept'),
          reject: this.trans.__('Reject'),
          acceptHint: this.trans.__('Keep the fix'),
          rejectHint: this.trans.__('Undo the fix: restore the cell as it was')
        },
        accept: () => showReview(editor.editor, null),
        reject: () => void this.undo(id)
      });
    }
  }

  async undo(id: string): Promise<IExtensionOutcome> {
    const record = this.applied.get(id);
    let outcome: IExtensionOutcome;
    if (record && this.holdsRecord(record)) {
      try {
        outcome = undoFix(record, this.trans);
      } catch {
        // the shared model of a deleted cell throws on access
        outcome = {
          applied: false,
          message: this.trans.__('A cell the fix edited was deleted; nothing was undone.')
        };
      }
    } else {
      outcome = this.undoFromSource(id);
    }
    if (outcome.applied) {
      this.applied.delete(id);
    }
    this.list.setMessage(id, outcome.message);
    this.recheckNow();
    return outcome;
  }

  /** Undo what the cells say is applied (the page was reloaded since, or the edit came otherwise). */
  private undoFromSource(id: string): IExtensionOutcome {
    this.recheckNow();
    const entry = this.list.find(id);
    const fix = entry?.state.fixes.find(f => f.index === entry.appliedFix);
    if (!entry || entry.status !== 'applied' || !fix) {
      return {
        applied: false,
        message: this.trans.__('No fix of this diagnosis is applied to the cells; nothing to undo.')
      };
    }
    const restores: IChange[] = [];
    for (const [key, fixed] of Object.entries(fix.cells)) {
      const before = fix.before[key];
      const target = cellTarget(this.options.panel, this.fixedTarget(entry, fix, key), this.trans);
      if (before === undefined || typeof target === 'string') {
        return {
          applied: false,
          message: this.trans.__("This fix cannot be undone from here; use the editor's undo (Ctrl+Z).")
        };
      }
      const current = target.getSource();
      restores.push({
        target,
        before: current,
        after: before.trimEnd() + current.slice(fixed.trimEnd().length)
      });
    }
    applyChanges(restores);
    const labels = restores.map(r => r.target.label).join(', ');
    return { applied: true, message: this.trans.__('Restored %1 as it was before the fix.', labels) };
  }

  dismiss(id: string): void {
    if (this.list.dismiss(id)) {
      this.channel.dismiss(id);
    }
  }

  /** Dismiss every listed diagnosis (the kernel leaves them out of later syncs). */
  clear(): void {
    for (const id of this.list.clear()) {
      this.channel.dismiss(id);
    }
  }

  private refuse(id: string, message: string): IExtensionOutcome {
    this.list.setMessage(id, message);
    return { applied: false, message };
  }

  // -- status, from the cells' source

  private scheduleRecheck(): void {
    if (this.recheckTimer !== null) {
      clearTimeout(this.recheckTimer);
    }
    this.recheckTimer = setTimeout(() => this.recheckNow(), RECHECK_MS);
  }

  private recheckNow(): void {
    if (this.recheckTimer !== null) {
      clearTimeout(this.recheckTimer);
      this.recheckTimer = null;
    }
    if (!this.disposed) {
      this.list.recheck(entry => this.derive(entry));
    }
  }

  /** Applied when the cells hold a fix's change; else stale when they changed or the kernel restarted. */
  private derive(entry: IDiagnosisEntry): IDerived {
    const chosen = entry.state.fixes.find(f => f.index === entry.chosenFix) ?? entry.state.fixes[0];
    const fixes = chosen ? [chosen, ...entry.state.fixes.filter(f => f !== chosen)] : [];
    for (const fix of fixes) {
      if (this.holds(entry, fix)) {
        return { status: 'applied', reason: '', appliedFix: fix.index };
      }
    }
    if (entry.restarted) {
      const reason = this.trans.__(
        'The kernel restarted since this diagnosis; re-run the cells to diagnose again.'
      );
      return { status: 'stale', reason, appliedFix: null };
    }
    const reason = chosen ? this.staleReason(entry, chosen) : null;
    return reason
      ? { status: 'stale', reason, appliedFix: null }
      : { status: 'new', reason: '', appliedFix: null };
  }

  private fixedTarget(entry: IDiagnosisEntry, fix: IFixView, key: string): IExpectedTarget {
    return {
      cell: Number(key),
      cellId: entry.state.cell_ids[key] ?? null,
      file: null,
      name: fix.diffs.find(d => d.cell === Number(key))?.label ?? `cell ${key}`,
      oldSource: fix.cells[key],
      newSource: null
    };
  }

  /** Whether the notebook holds `fix`'s change now. */
  private holds(entry: IDiagnosisEntry, fix: IFixView): boolean {
    const record = this.applied.get(entry.state.id);
    if (record && record.fixIndex === fix.index && this.holdsRecord(record)) {
      return true;
    }
    const keys = Object.keys(fix.cells);
    return (
      keys.length > 0 &&
      keys.every(key => {
        const target = cellTarget(this.options.panel, this.fixedTarget(entry, fix, key), this.trans);
        return typeof target !== 'string' && sameSource(target.getSource(), fix.cells[key]);
      })
    );
  }

  private holdsRecord(record: IAppliedFix): boolean {
    try {
      return record.changes.every(c => c.target.getSource() === c.after);
    } catch {
      return false; // a cell it edited was deleted
    }
  }

  private staleReason(entry: IDiagnosisEntry, fix: IFixView): string | null {
    for (const [key, before] of Object.entries(fix.before)) {
      const target = cellTarget(
        this.options.panel,
        {
          cell: Number(key),
          cellId: entry.state.cell_ids[key] ?? null,
          file: null,
          name: fix.diffs.find(d => d.cell === Number(key))?.label ?? `cell ${key}`,
          oldSource: before,
          newSource: null
        },
        this.trans
      );
      if (typeof target === 'string') {
        return target;
      }
      if (!sameSource(target.getSource(), before)) {
        return this.trans.__('%1 changed since the diagnosis; re-run it to diagnose again.', target.label);
      }
    }
    return null;
  }

  // -- linked panels

  /** A panel in this notebook asked to be linked: tell it now and whenever the notebook changes. */
  link(el: EventTarget & { isConnected: boolean }, detail: ILinkDetail): void {
    const linked = { el, detail };
    this.links.push(linked);
    detail.update(this.linkFor(detail));
  }

  private linkFor(detail: ILinkDetail): ILink {
    const entry = this.list.find(detail.diagnosisId);
    const refs: ICellRef[] = detail.cells;
    const names = cellNames(cellModels(this.options.panel), refs, this.trans);
    if (!entry) {
      return { names, appliedFix: null, refusal: '' }; // not here (yet): the kernel path decides
    }
    return { names, appliedFix: entry.appliedFix, refusal: entry.status === 'stale' ? entry.reason : '' };
  }

  private pushLinks(): void {
    this.links = this.links.filter(linked => linked.el.isConnected);
    for (const linked of this.links) {
      linked.detail.update(this.linkFor(linked.detail));
    }
  }

  private onExecuted(_: unknown, args: { notebook: unknown }): void {
    if (args.notebook === this.options.panel.content) {
      this.cellsRenamed();
    }
  }

  private cellsRenamed(): void {
    if (!this.disposed) {
      this.renamedSignal.emit();
      this.pushLinks();
      this.refreshMarks();
    }
  }

  private onListChanged(): void {
    this.pushLinks();
    this.refreshMarks();
    this.refreshFolds();
  }

  // -- folded tracebacks

  private refreshFolds(): void {
    const notebook = this.options.panel.content;
    const models = cellModels(this.options.panel);
    for (const entry of this.list.entries) {
      const where = entry.state.error.where;
      if (!where || placeOf(entry.state) === null || where.cell === undefined) {
        continue;
      }
      const index = cellIndexOf(models, where);
      const cell = index >= 0 ? notebook.widgets[index] : null;
      if (!cell || cell.model.type !== 'code') {
        continue;
      }
      const code = cell as CodeCell;
      const files = [entry.state.writer, entry.state.saver]
        .flatMap(site => [site?.where?.file, site?.defined_at?.file])
        .filter((f): f is string => !!f);
      foldTraceback(code, entry.state.id, files, this.trans);
      if (!this.watched.has(code)) {
        // an output rendered after the diagnosis arrived (or rendered again) is folded then
        this.watched.add(code);
        code.outputArea.outputLengthChanged.connect(() => this.refreshFolds(), this);
      }
    }
  }

  // -- reveal

  async reveal(where: IWhere): Promise<void> {
    const notebookPath = this.options.panel.context.path;
    const problem =
      where.cell === undefined && where.file
        ? await this.options.revealFile(where.file, where.line, notebookPath)
        : await this.marks.reveal(where);
    if (problem) {
      this.list.problem = problem;
    }
  }

  private refreshMarks(): void {
    if (!this.disposed) {
      this.marks.refresh();
    }
  }
}
