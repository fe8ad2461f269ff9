/** The version timeline of the tensor: saved at vN by X -> written by Y -> needed at vN by X's backward. */
import { cls, h, rich } from './dom';
import { type CellNames, whereText } from './text';
import type { ITimelineStep, IWhere } from './wire';

export function renderTimeline(
  steps: ITimelineStep[],
  onReveal: (where: IWhere) => void,
  names: CellNames
): HTMLElement {
  if (!steps.length) {
    return h('p', { className: cls('empty') }, 'No version history was recorded for this tensor.');
  }
  return h(
    'ol',
    { className: cls('timeline'), attrs: { 'aria-label': 'Version timeline of the tensor' } },
    ...steps.map(step =>
      h(
        'li',
        { className: cls('timelineStep', step.event, step.conflict && 'conflict') },
        h('span', { className: cls('version') }, step.version !== null ? `v${step.version}` : '·'),
        h('span', { className: cls('timelineText') }, ...rich(step.text)),
        step.where && renderLocation(step.where, onReveal, names)
      )
    )
  );
}

/**
 * A location as a button that asks the notebook to show the line (its name, the cell as the notebook
 * shows it now, is its accessible name), with the code beside it.
 */
export function renderLocation(
  where: IWhere,
  onReveal: (where: IWhere) => void,
  names: CellNames,
  withCode = true
): HTMLElement {
  const button = h(
    'button',
    { className: cls('location'), attrs: { type: 'button', title: 'Show this line in the notebook' } },
    ...whereText(where, names)
  );
  button.addEventListener('click', () => onReveal(where));
  return h(
    'span',
    { className: cls('where') },
    button,
    withCode && where.code ? h('code', { className: cls('code') }, where.code) : null
  );
}
