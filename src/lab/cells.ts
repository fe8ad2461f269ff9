/**
 * A notebook's cells as the kernel names them: by cell id where the kernel saw it, else by the text
 * the kernel ran, else by In[] number; and a cell as a text target that edits go through (its shared
 * model, so the editor's undo sees them).
 */
import type { ICellModel } from '@jupyterlab/cells';
import type { NotebookPanel } from '@jupyterlab/notebook';

import { type IExpectedTarget, type ITextTarget, sameSource } from './edits';
import { cellName } from './names';
import type { ITrans } from './trans';

export function cellModels(panel: NotebookPanel): ICellModel[] {
  const cells = panel.content.model?.cells;
  const out: ICellModel[] = [];
  if (cells) {
    for (let i = 0; i < cells.length; i++) {
      out.push(cells.get(i));
    }
  }
  return out;
}

export function executionCount(model: ICellModel): number | null {
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

/** The live cell a fix target names, or why it is gone. */
export function cellTarget(
  panel: NotebookPanel,
  target: IExpectedTarget,
  trans: ITrans
): ITextTarget | string {
  const models = cellModels(panel);
  const kernelName = target.name;
  let index: number;
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
    return trans.__(
      '%1 no longer exists in this notebook; nothing was changed. Re-run the cells to diagnose again.',
      kernelName
    );
  }
  const shared = models[index].sharedModel;
  return {
    label: cellName(models, { cell_id: models[index].id }, trans) ?? kernelName,
    index,
    getSource: () => shared.getSource(),
    updateSource: (start, end, text) => shared.updateSource(start, end, text),
    checkpoint: () =>
      (shared as { undoManager?: { stopCapturing(): void } | null }).undoManager?.stopCapturing()
  };
}
