/**
 * Cells named the way the notebook shows them: "cell [7]", the In[] prompt beside the cell now, found
 * by the cell's id (so the name stays true after the cell is re-run or moved). A cell the kernel saw
 * without an id is found by the In[] number it ran as; a cell that has no prompt now (never run since,
 * or its outputs cleared) is named by its position, as the status bar counts cells ("cell 3/7").
 */
import type { ICellModel } from '@jupyterlab/cells';

import { refKey, type ICellRef } from '../panel/events';
import type { ISegment } from '../panel/wire';
import { cellIndexOf, executionCount } from './cells';
import type { ITrans } from './trans';

/** The name of the cell `ref` names, or null when the notebook has no such cell. */
export function cellName(
  models: ICellModel[],
  ref: { cell?: number | null; cell_id?: string | null },
  trans: ITrans
): string | null {
  const index = cellIndexOf(models, ref);
  if (index < 0) {
    return null;
  }
  const count = executionCount(models[index]);
  return count !== null ? trans.__('cell [%1]', count) : trans.__('cell %1/%2', index + 1, models.length);
}

/** refKey -> the cell's name now, for every ref the notebook still has. */
export function cellNames(models: ICellModel[], refs: ICellRef[], trans: ITrans): Record<string, string> {
  const names: Record<string, string> = {};
  for (const ref of refs) {
    const key = refKey({ cell: ref.cell, cell_id: ref.cellId });
    const name = key !== null ? cellName(models, { cell: ref.cell, cell_id: ref.cellId }, trans) : null;
    if (key !== null && name !== null) {
      names[key] = name;
    }
  }
  return names;
}

/** Segments as plain text, the cells named as the notebook shows them now. */
export function namedText(parts: ISegment[], models: ICellModel[], trans: ITrans): string {
  return parts
    .map(part => (part.cell !== undefined ? (cellName(models, part, trans) ?? part.text) : part.text))
    .join('');
}
