/**
 * One notebook's side of the extension: its diagnosis list (filled by the kernel's comm), Apply and
 * Undo through the notebook's shared model, the staleness of each entry, and revealing a location.
 * The comm is ./channel, the cells ./cells, the line marks ./marks.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { IDisposable } from '@lumino/disposable';

import type { IExtensionOutcome } from '../panel/events';
import type { IWhere } from '../panel/wire';
import { cellTarget } from './cells';
import { KernelChannel } from './channel';
import {
  applyChanges,
  type IAppliedFix,
  type ITargetResolver,
  type ITextTarget,
  planFix,
  sameSource,
  undoFix
} from './edits';
import { LineMarks } from './marks';
import { applyRefusal, DiagnosisList, type IDiagnosisEntry, issuedFix } from './model';
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

export class NotebookSession implements ISidebarSource, IDisposable {
  readonly list = new DiagnosisList();
  private applied = new Map<string, IAppliedFix>();
  private channel: KernelChannel;
  private marks: LineMarks;
  private recheckTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;

  constructor(private options: ISessionOptions) {
    const { panel, trans } = options;
    this.channel = new KernelChannel(panel.sessionContext, () => options.settings().autoDiagnose, {
      diagnosis: state => this.list.add(state, trans),
      problem: text => (this.list.problem = text),
      restarted: () => this.list.kernelRestarted(trans)
    });
    this.marks = new LineMarks(panel, this.list, () => options.settings().highlightLines, trans);
    panel.content.modelContentChanged.connect(this.scheduleRecheck, this);
    panel.content.cellInViewportChanged.connect(() => this.refreshMarks(), this);
    this.list.changed.connect(() => this.refreshMarks(), this);
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

  dispose(): void {
    if (!this.disposed) {
      this.disposed = true;
      if (this.recheckTimer !== null) {
        clearTimeout(this.recheckTimer);
      }
      this.channel.dispose();
    }
  }

  settingsChanged(): void {
    this.channel.settingsChanged();
    this.refreshMarks();
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
    const refusal = applyRefusal(this.list.find(id) ?? issued.entry, this.trans);
    if (refusal) {
      return this.refuse(id, refusal);
    }
    const plan = await planFix(issued.entry.state, fixIndex, this.resolver(), this.trans);
    if (!plan.ok) {
      return this.refuse(id, plan.message);
    }
    applyChanges(plan.changes);
    this.applied.set(id, { diagnosisId: id, fixIndex, changes: plan.changes });
    const labels = plan.changes.map(c => c.target.label).join(', ');
    const parts = [this.trans.__('Applied “%1” to %2.', issued.fix.title, labels)];
    const semantics = issued.fix.labels.find(l => l.tag === 'changes-semantics');
    if (semantics) {
      parts.push(this.trans.__('This fix %1.', semantics.text));
    }
    if (issued.fix.edits.some(e => e.cell === undefined)) {
      parts.push(this.trans.__('Save the edited file to keep it.'));
    }
    parts.push(issued.fix.rerun);
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
      // the shared model of a deleted cell throws on access
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
    if (!this.disposed) {
      this.list.recheck(entry => this.staleReason(entry));
    }
  }

  private staleReason(entry: IDiagnosisEntry): string | null {
    const fix = entry.state.fixes[entry.chosenFix] ?? entry.state.fixes[0];
    if (!fix) {
      return null;
    }
    for (const [key, before] of Object.entries(fix.before)) {
      const target = cellTarget(
        this.options.panel,
        {
          cell: Number(key),
          cellId: entry.state.cell_ids[key] ?? null,
          file: null,
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
