/**
 * The error output of a diagnosed cell with its library frames folded away (./folding decides which):
 * the original output is kept, hidden, and "Show full traceback" brings it back; nothing is removed.
 */
import { Sanitizer } from '@jupyterlab/apputils';
import type { CodeCell } from '@jupyterlab/cells';
import type * as nbformat from '@jupyterlab/nbformat';
import { renderText } from '@jupyterlab/rendermime';

import { foldPlan } from './folding';
import type { ITrans } from './trans';

const FOLDED = 'jp-InplaceMagic-folded';
const DONE_ATTR = 'data-inplace-magic-fold';

const sanitizer = new Sanitizer();

/**
 * Fold the library frames of `cell`'s error output (once per diagnosis); false when there is
 * nothing to fold or the output is not rendered yet.
 */
export function foldTraceback(cell: CodeCell, key: string, userFiles: string[], trans: ITrans): boolean {
  const area = cell.outputArea;
  let folded = false;
  for (let i = 0; i < area.model.length; i++) {
    const output = area.model.get(i).toJSON() as nbformat.IOutput;
    if (output.output_type !== 'error') {
      continue;
    }
    const node = area.widgets[i]?.node.querySelector<HTMLElement>('.jp-OutputArea-output');
    if (!node || !node.querySelector(':scope > pre')) {
      continue;
    }
    if (node.getAttribute(DONE_ATTR) === key) {
      folded = true;
      continue;
    }
    const plan = foldPlan((output as nbformat.IError).traceback, userFiles);
    if (!plan.some(item => 'frames' in item)) {
      continue;
    }
    node.querySelector(':scope > .jp-InplaceMagic-tracebackFold')?.remove();
    node.querySelector(':scope > .jp-InplaceMagic-tracebackToggle')?.remove();
    const view = document.createElement('div');
    view.className = 'jp-InplaceMagic-tracebackFold';
    const hidden = plan.reduce((sum, item) => sum + ('frames' in item ? item.frames : 0), 0);
    for (const item of plan) {
      if ('entry' in item) {
        const host = document.createElement('div');
        host.className = 'jp-InplaceMagic-tracebackEntry';
        void renderText({ host, sanitizer, source: item.entry });
        view.append(host);
      } else {
        const row = document.createElement('div');
        row.className = 'jp-InplaceMagic-foldedFrames';
        row.textContent =
          item.frames === 1
            ? trans.__('… 1 frame in %1 (library code) folded', item.packages.join(', '))
            : trans.__('… %1 frames in %2 (library code) folded', item.frames, item.packages.join(', '));
        view.append(row);
      }
    }
    const toggle = document.createElement('button');
    toggle.type = 'button';
    toggle.className = 'jp-InplaceMagic-tracebackToggle jp-mod-styled';
    const label = (): void => {
      toggle.textContent = node.classList.contains(FOLDED)
        ? trans.__('Show full traceback (%1 library frames)', hidden)
        : trans.__('Fold library frames');
      toggle.setAttribute('aria-expanded', String(!node.classList.contains(FOLDED)));
    };
    toggle.addEventListener('click', () => {
      node.classList.toggle(FOLDED);
      label();
    });
    node.classList.add(FOLDED);
    node.setAttribute(DONE_ATTR, key);
    node.prepend(view);
    node.append(toggle);
    label();
    folded = true;
  }
  return folded;
}
