/**
 * One notebook's side of the extension: the comm with its kernel (across restarts and kernel
 * changes), its diagnosis list, Apply/Undo through the notebook's shared model, revealing a location
 * and the line decorations of the current diagnoses.
 */
import type { ICellModel } from '@jupyterlab/cells';
import { CodeMirrorEditor } from '@jupyterlab/codemirror';
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import type { IDisposable } from '@lumino/disposable';

import type { IExpectedTarget, IExtensionOutcome, IPanelState, IWhere } from '../panel/protocol';
import {
  applyChanges,
  type IAppliedFix,
  type ITargetResolver,
  type ITextTarget,
  planFix,
  rerunHint,
  sameSource,
  undoFix
} from './edits';
import { type ILineMark, setLineMarks } from './highlight';
import { applyRefusal, DiagnosisList, type IDiagnosisEntry, issuedFix } from './model';
import { COMM_TARGET, configure, parseKernelMessage } from './protocol';
import type { ITrans } from './trans';

export interface ISettings {
  autoDiagnose: boolean;
  highlightLines: boolean;
}

export interface ISessionOptions {
  panel: NotebookPanel;
  trans: ITrans;
  settings: () => ISettings;
  /** Open a `.py` file the kernel named (in an editor the user sees) and give its text. */
  openFile: (file: string, notebookPath: string) => Promise<ITextTarget | string>;
  /** Show a line of a `.py` file. */
  revealFile: (file: string, line: number, notebookPath: string) => Promise<string | null>;
}

/** What the sidebar needs from a notebook. */
export interface ISidebarSource {
  readonly list: DiagnosisList;
  readonly title: string;
  apply(id: string, fixIndex: number): Promise<IExtensionOutcome>;
  undo(id: string): Promise<IExtensionOutcome>;
  reveal(where: IWhere): Promise<void>;
}

const RECHECK_MS = 300;
const REVEAL_MS = 2500;

function cellModels(panel: NotebookPanel): ICellModel[] {
  const cells = panel.content.model?.cells;
  const out: ICellModel[] = [];
  if (cells) {
    for (let i = 0; i < cells.length; i++) {
      out.push(cells.get(i));
    }
  }
  return out;
}

function executionCount(model: ICellModel): number | null {
  const count = (model as { executionCount?: number | null }).executionCount;
  return typeof count === 'number' ? count : null;
}

/** The index in the notebook of the cell a location names: by id, else by its In[] number. */
export function cellIndexOf(
  models: ICellModel[],
  where: { cell?: number | null; cell_id?: string | null }
): number {
  if (where.cell_id) {
    return models.findIndex(m => m.id === where.cell_id);
  }
  if (typeof where.cell === 'number') {
    const found = models.flatMap((m, i) =>
      m.type === 'code' && executionCount(m) === where.cell ? [i] : []
    );
    return found.length === 1 ? found[0] : -1;
  }
  return -1;
}

export class NotebookSession implements ISidebarSource, IDisposable {
  readonly list = new DiagnosisList();
  private applied = new Map<string, IAppliedFix>();
  private kernel: Kernel.IKernelConnection | null = null;
  private comm: Kernel.IComm | null = null;
  private recheckTimer: ReturnType<typeof setTimeout> | null = null;
  private revealed: { index: number; line: number; timer: ReturnType<typeof setTimeout> } | null = null;
  private disposed = false;

  constructor(private options: ISessionOptions) {
    const { panel } = options;
    const context = panel.sessionContext;
    context.kernelChanged.connect((_, change) => {
      if (change.oldValue) {
        this.list.kernelRestarted(this.trans);
      }
      this.attach(change.newValue);
    }, this);
    void context.ready.then(() => this.attach(context.session?.kernel ?? null));
    panel.content.modelContentChanged.connect(this.scheduleRecheck, this);
    panel.content.cellInViewportChanged.connect(() => this.refreshHighlights(), this);
    this.list.changed.connect(() => this.refreshHighlights(), this);
  }

  get title(): string {
    return this.options.panel.title.label;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private get trans(): ITrans {
    return this.options.trans;
  }

  private get panel(): NotebookPanel {
    return this.options.panel;
  }

  dispose(): void {
    if (!this.disposed) {
      this.disposed = true;
      if (this.recheckTimer !== null) {
        clearTimeout(this.recheckTimer);
      }
      this.kernel?.statusChanged.disconnect(this.onStatus, this);
    }
  }

  /** Tell the kernel the settings it applies (it asked with its hello). */
  settingsChanged(): void {
    if (this.comm && !this.comm.isDisposed) {
      this.comm.send({ ...configure(this.options.settings().autoDiagnose) });
    }
    this.refreshHighlights();
  }

  // -- kernel

  private attach(kernel: Kernel.IKernelConnection | null): void {
    if (kernel === this.kernel || this.disposed) {
      return;
    }
    this.kernel?.statusChanged.disconnect(this.onStatus, this);
    this.kernel = kernel;
    this.comm = null;
    if (kernel) {
      kernel.registerCommTarget(COMM_TARGET, (comm, msg) => this.onCommOpen(comm, msg));
      kernel.statusChanged.connect(this.onStatus, this);
    }
  }

  private onStatus(_: Kernel.IKernelConnection, status: KernelMessage.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      this.comm = null;
      this.list.kernelRestarted(this.trans);
    }
  }

  private onCommOpen(comm: Kernel.IComm, msg: KernelMessage.ICommOpenMsg): void {
    const parsed = parseKernelMessage(msg.content.data);
    if (!parsed.ok) {
      this.list.problem = parsed.problem;
      return;
    }
    this.list.problem = null;
    // the kernel opens a comm per message: keep the latest (for settings), close the one before
    if (this.comm && this.comm !== comm && !this.comm.isDisposed) {
      this.comm.close();
    }
    this.comm = comm;
    if (parsed.message.type === 'hello') {
      comm.send({ ...configure(this.options.settings().autoDiagnose) });
    } else {
      this.list.add(parsed.message.state, this.trans);
    }
  }

  // -- apply and undo

  private resolver(): ITargetResolver {
    const notebookPath = this.options.panel.context.path;
    return {
      cell: target => this.cellTarget(target),
      file: file => this.options.openFile(file, notebookPath)
    };
  }

  private cellTarget(target: IExpectedTarget): ITextTarget | string {
    const models = cellModels(this.panel);
    const label = this.trans.__('cell %1', target.cell ?? '?');
    let index = -1;
    if (target.cellId) {
      index = models.findIndex(m => m.id === target.cellId);
    } else if (target.oldSource !== null) {
      const old = target.oldSource;
      const same = models.flatMap((m, i) => (sameSource(m.sharedModel.getSource(), old) ? [i] : []));
      index = same.length === 1 ? same[0] : -1;
    } else {
      index = cellIndexOf(models, { cell: target.cell });
    }
    if (index < 0) {
      return this.trans.__(
        '%1 no longer exists in this notebook; nothing was changed. Re-run the cells to diagnose again.',
        label
      );
    }
    const shared = models[index].sharedModel;
    return {
      label,
      getSource: () => shared.getSource(),
      updateSource: (start, end, text) => shared.updateSource(start, end, text),
      checkpoint: () =>
        (shared as { undoManager?: { stopCapturing(): void } | null }).undoManager?.stopCapturing()
    };
  }

  async apply(id: string, fixIndex: number): Promise<IExtensionOutcome> {
    const issued = issuedFix(this.list, id, fixIndex, this.trans);
    if ('refusal' in issued) {
      return { applied: false, message: issued.refusal };
    }
    this.recheckNow();
    const refusal = applyRefusal(this.list.find(id) ?? issued.entry, this.trans);
    if (refusal) {
      return this.refuse(id, refusal);
    }
    const state = issued.entry.state;
    const plan = await planFix(state, fixIndex, this.resolver(), this.trans);
    if (!plan.ok) {
      return this.refuse(id, plan.message);
    }
    applyChanges(plan.changes);
    this.applied.set(id, { diagnosisId: id, fixIndex, changes: plan.changes });
    const labels = plan.changes.map(c => c.target.label).join(', ');
    const parts = [this.trans.__('Applied “%1” to %2.', issued.fix.title, labels)];
    if (issued.fix.changes_semantics) {
      parts.push(this.trans.__('This fix changes the training semantics.'));
    }
    if (issued.fix.edits.some(e => e.cell === undefined)) {
      parts.push(this.trans.__('Save the edited file to keep it.'));
    }
    parts.push(rerunHint(state, issued.fix, this.trans));
    const message = parts.join(' ');
    this.list.markApplied(id, fixIndex, message);
    return { applied: true, message };
  }

  async undo(id: string): Promise<IExtensionOutcome> {
    const record = this.applied.get(id);
    if (!record) {
      return {
        applied: false,
        message: this.trans.__('No fix of this diagnosis was applied from JupyterLab; nothing to undo.')
      };
    }
    let outcome: IExtensionOutcome;
    try {
      outcome = undoFix(record, this.trans);
    } catch {
      outcome = {
        applied: false,
        message: this.trans.__('A cell the fix edited was deleted; nothing was undone.')
      };
    }
    if (outcome.applied) {
      this.applied.delete(id);
      this.list.markUndone(id, outcome.message, this.trans);
      this.recheckNow();
    } else {
      this.list.setMessage(id, outcome.message);
    }
    return outcome;
  }

  private refuse(id: string, message: string): IExtensionOutcome {
    this.list.setMessage(id, message);
    return { applied: false, message };
  }

  // -- staleness

  private scheduleRecheck(): void {
    if (this.recheckTimer !== null) {
      clearTimeout(this.recheckTimer);
    }
    this.recheckTimer = setTimeout(() => this.recheckNow(), RECHECK_MS);
  }

  /** Mark stale every current diagnosis whose fix no longer matches its cells. */
  private recheckNow(): void {
    if (this.recheckTimer !== null) {
      clearTimeout(this.recheckTimer);
      this.recheckTimer = null;
    }
    if (this.disposed) {
      return;
    }
    this.list.recheck(entry => this.staleReason(entry));
  }

  private staleReason(entry: IDiagnosisEntry): string | null {
    const fix = entry.state.fixes[entry.chosenFix] ?? entry.state.fixes[0];
    if (!fix) {
      return null;
    }
    for (const [key, before] of Object.entries(fix.before)) {
      const target = this.cellTarget({
        cell: Number(key),
        cellId: entry.state.cell_ids[key] ?? null,
        file: null,
        oldSource: before,
        newSource: null,
        oldLines: []
      });
      if (typeof target === 'string') {
        return target;
      }
      if (!sameSource(target.getSource(), before)) {
        return this.trans.__('%1 changed since the diagnosis; re-run it to diagnose again.', target.label);
      }
    }
    return null;
  }

  // -- reveal and highlight

  async reveal(where: IWhere): Promise<void> {
    if (where.cell === undefined && where.file) {
      const problem = await this.options.revealFile(where.file, where.line, this.panel.context.path);
      if (problem) {
        this.list.problem = problem;
      }
      return;
    }
    const notebook = this.panel.content;
    const index = cellIndexOf(cellModels(this.panel), where);
    if (index < 0) {
      this.list.problem = this.trans.__(
        'Cell %1 is not in this notebook any more (deleted, or re-run under another number).',
        where.cell ?? '?'
      );
      return;
    }
    notebook.deselectAll();
    notebook.activeCellIndex = index;
    const cell = notebook.widgets[index];
    await notebook.scrollToCell(cell, 'center');
    cell.editor?.setCursorPosition({ line: Math.max(0, where.line - 1), column: 0 });
    if (this.revealed) {
      clearTimeout(this.revealed.timer);
    }
    this.revealed = {
      index,
      line: where.line,
      timer: setTimeout(() => {
        this.revealed = null;
        this.refreshHighlights();
      }, REVEAL_MS)
    };
    this.refreshHighlights();
  }

  private marksFor(models: ICellModel[], index: number): ILineMark[] {
    const marks: ILineMark[] = [];
    if (this.options.settings().highlightLines) {
      const here = (where: IWhere | null | undefined): where is IWhere =>
        !!where && where.cell !== undefined && cellIndexOf(models, where) === index;
      for (const entry of this.list.entries.filter(e => e.status === 'new')) {
        const { writer, saver } = entry.state;
        const op = (site: IPanelState['writer']): string => site?.op ?? '?';
        for (const where of [writer?.where, writer?.defined_at]) {
          if (here(where)) {
            marks.push({
              line: where.line,
              role: 'writer',
              title: this.trans.__('Written in place (%1)', op(writer))
            });
          }
        }
        if (here(saver?.where)) {
          marks.push({
            line: saver.where.line,
            role: 'saver',
            title: this.trans.__('Saved for backward (%1)', op(saver))
          });
        }
      }
    }
    if (this.revealed && this.revealed.index === index) {
      marks.push({ line: this.revealed.line, role: 'reveal', title: '' });
    }
    return marks;
  }

  private refreshHighlights(): void {
    if (this.disposed) {
      return;
    }
    const models = cellModels(this.panel);
    this.panel.content.widgets.forEach((cell, index) => {
      const editor = cell.editor;
      if (editor instanceof CodeMirrorEditor && models[index]) {
        setLineMarks(editor.editor, this.marksFor(models, index));
      }
    });
  }
}
