/**
 * The fixes: the best one open, alternatives folded; each with its labels, a diff per cell or file,
 * Apply and Undo, and a status line that says which path was taken. The labels' words come from the
 * kernel (inplace_magic/present/words.py), as every face shows them.
 */
import type { FixController, IStatus } from './apply';
import { cls, h, rich } from './dom';
import type { IFixView, ITargetDiff } from './wire';

const PATH_TEXT: Record<IStatus['path'], string> = {
  extension: 'Applied through the JupyterLab extension',
  'kernel-file': 'Applied by the kernel (file on disk)',
  copy: 'Copy the fixed code',
  none: 'Not applied'
};

const DIFF_WORDS: Record<string, [string, string]> = {
  '-': ['del', 'removed: '],
  '+': ['add', 'added: '],
  ' ': ['ctx', ''],
  '@': ['hunk', '']
};

export function renderLabels(fix: IFixView): HTMLElement {
  return h(
    'span',
    { className: cls('labels') },
    ...fix.labels.map(label => h('span', { className: cls('label', label.tag) }, label.text))
  );
}

export function renderDiff(diff: ITargetDiff): HTMLElement {
  return h(
    'div',
    { className: cls('diff') },
    h('div', { className: cls('diffTarget') }, diff.label),
    h(
      'pre',
      {
        className: cls('diffBody'),
        attrs: { role: 'region', 'aria-label': `Changes to ${diff.label}`, tabindex: '0' }
      },
      ...diff.lines.map(line => {
        const [kind, spoken] = DIFF_WORDS[line.op];
        const sign = line.op === '@' ? '@@ ' : `${line.op} `;
        return h(
          'div',
          { className: cls('diffLine', kind) },
          h('span', { className: cls('srOnly') }, spoken),
          h('span', { className: cls('diffSign'), attrs: { 'aria-hidden': 'true' } }, sign),
          line.op === '@' ? `${line.text} @@` : line.text
        );
      })
    )
  );
}

function renderCopy(status: IStatus): HTMLElement | null {
  if (!status.copy.length) {
    return null;
  }
  return h(
    'div',
    { className: cls('copy') },
    ...status.copy.map(item => {
      const code = h(
        'pre',
        { className: cls('copyText'), attrs: { tabindex: '0', 'aria-label': `Fixed ${item.label}` } },
        item.text
      );
      const button = h(
        'button',
        { className: cls('button'), attrs: { type: 'button' } },
        `Copy ${item.label}`
      );
      button.addEventListener('click', () => {
        const done = (): void => {
          button.textContent = `Copied ${item.label}`;
        };
        if (navigator.clipboard) {
          navigator.clipboard.writeText(item.text).then(done, () => selectText(code));
        } else {
          selectText(code);
        }
      });
      return h('div', { className: cls('copyItem') }, button, code);
    })
  );
}

function selectText(node: HTMLElement): void {
  const range = document.createRange();
  range.selectNodeContents(node);
  const selection = window.getSelection();
  selection?.removeAllRanges();
  selection?.addRange(range);
}

function renderFix(fix: IFixView, controller: FixController): HTMLElement {
  const canApply = fix.edits.length > 0 || Object.keys(fix.cells).length > 0;
  const apply = h('button', { className: cls('button', 'primary'), attrs: { type: 'button' } }, 'Apply');
  const undo = h('button', { className: cls('button'), attrs: { type: 'button' } }, 'Undo');
  apply.disabled = !canApply;
  undo.disabled = true;
  const status = h('p', { className: cls('status'), attrs: { role: 'status', 'aria-live': 'polite' } });
  const extra = h('div', { className: cls('statusExtra') });
  const show = (result: IStatus): void => {
    status.replaceChildren(
      h('span', { className: cls('path', result.path) }, PATH_TEXT[result.path]),
      ' ',
      result.message
    );
    status.dataset.path = result.path;
    extra.replaceChildren(...[renderCopy(result)].filter((n): n is HTMLElement => n !== null));
  };
  const run = async (action: 'apply' | 'undo'): Promise<void> => {
    apply.disabled = true;
    undo.disabled = true;
    status.textContent = action === 'apply' ? 'Applying…' : 'Undoing…';
    const result = action === 'apply' ? await controller.apply(fix) : await controller.undo(fix);
    show(result);
    const applied = controller.pathOf(fix) !== null;
    apply.disabled = applied || !canApply;
    undo.disabled = !applied;
  };
  apply.addEventListener('click', () => void run('apply'));
  undo.addEventListener('click', () => void run('undo'));
  return h(
    'div',
    { className: cls('fix'), attrs: { 'data-fix-index': String(fix.index) } },
    h('p', { className: cls('fixDescription') }, ...rich(fix.description)),
    ...fix.diffs.map(renderDiff),
    fix.notes.length > 0 &&
      h('ul', { className: cls('fixNotes') }, ...fix.notes.map(n => h('li', {}, ...rich(n)))),
    h('div', { className: cls('actions') }, apply, undo),
    status,
    extra
  );
}

/** The fix section: the first fix open, the others as folded alternatives. */
export function renderFixes(fixes: IFixView[], controller: FixController): HTMLElement {
  if (!fixes.length) {
    return h(
      'p',
      { className: cls('empty') },
      'No fix was found automatically: the explanation above says what to change.'
    );
  }
  return h(
    'div',
    { className: cls('fixes') },
    ...fixes.map((fix, i) => {
      const details = h(
        'details',
        { className: cls('fixCard', i > 0 && 'alternative') },
        h(
          'summary',
          { className: cls('fixSummary') },
          h('span', { className: cls('fixTitle') }, i > 0 ? 'Alternative: ' : '', ...rich(fix.title)),
          ' ',
          renderLabels(fix)
        ),
        renderFix(fix, controller)
      );
      details.open = i === 0;
      return details;
    })
  );
}
