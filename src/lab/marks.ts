/**
 * The lines of one notebook that the diagnoses point at: the writer and saver lines of the current
 * diagnoses (a setting), and a brief mark on the line a click revealed.
 */
import { CodeMirrorEditor } from '@jupyterlab/codemirror';
import type { NotebookPanel } from '@jupyterlab/notebook';

import type { ISiteView, IWhere } from '../panel/wire';
import { cellIndexOf, cellModels } from './cells';
import { type ILineMark, setLineMarks } from './highlight';
import type { DiagnosisList } from './model';
import type { ITrans } from './trans';

const REVEAL_MS = 2500;

export class LineMarks {
  private revealed: { index: number; line: number; timer: ReturnType<typeof setTimeout> } | null = null;

  constructor(
    private panel: NotebookPanel,
    private list: DiagnosisList,
    private highlight: () => boolean,
    private trans: ITrans
  ) {}

  /** Select and scroll to the cell line `where` names, and mark it briefly; or why it cannot. */
  async reveal(where: IWhere): Promise<string | null> {
    const notebook = this.panel.content;
    const index = cellIndexOf(cellModels(this.panel), where);
    if (index < 0) {
      return this.trans.__(
        'Cell %1 is not in this notebook any more (deleted, or re-run under another number).',
        where.cell ?? '?'
      );
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
        this.refresh();
      }, REVEAL_MS)
    };
    this.refresh();
    return null;
  }

  /** Draw the marks of every cell again (after a change of the list, the cells or the setting). */
  refresh(): void {
    const models = cellModels(this.panel);
    this.panel.content.widgets.forEach((cell, index) => {
      const editor = cell.editor;
      if (editor instanceof CodeMirrorEditor && models[index]) {
        setLineMarks(editor.editor, this.marksFor(models, index));
      }
    });
  }

  private marksFor(models: ReturnType<typeof cellModels>, index: number): ILineMark[] {
    const marks: ILineMark[] = [];
    if (this.highlight()) {
      const here = (where: IWhere | null | undefined): where is IWhere =>
        !!where && where.cell !== undefined && cellIndexOf(models, where) === index;
      const op = (site: ISiteView | null): string => site?.op ?? '?';
      for (const entry of this.list.entries.filter(e => e.status === 'new')) {
        const { writer, saver } = entry.state;
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
}
