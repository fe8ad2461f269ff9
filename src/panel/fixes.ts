/**
 * The fixes: the best one under the headline, the others in the panel's "Other fixes" tab; each with
 * its labels and verification status (the kernel's words: inplace_magic/present/words.py), a diff per
 * cell or file, Apply and Undo, and one status line. Apply is offered only when the kernel offers the
 * fix (not while it verifies it) and, in a linked notebook, when the notebook's cells allow it.
 */
import type { FixController, IStatus } from './apply';
import { cls, h, present, rich } from './dom';
import type { ILink } from './events';
import { type CellNames, segments } from './text';
import type { IFixView, ITargetDiff } from './wire';

const DIFF_WORDS: Record<string, [string, string]> = {
  '-': ['del', 'removed: '],
  '+': ['add', 'added: '],
  ' ': ['ctx', ''],
  '@': ['hunk', '']
};

export function renderLabels(fix: IFixView): HTMLElement {
  return h(
    'span',
    { className: cls('labels'), attrs: { 'data-verification': fix.verification.status } },
    ...fix.labels.map(label =>
      h(
        'span',
        { className: cls('label', label.tag), attrs: label.tag === 'verifying' ? { role: 'status' } : {} },
        label.tag === 'verifying'
          ? h('span', { className: cls('spinner'), attrs: { 'aria-hidden': 'true' } })
          : null,
        label.text
      )
    )
  );
}

export function renderDiff(diff: ITargetDiff, names: CellNames): HTMLElement {
  const target = h('div', { className: cls('diffTarget') }, ...segments(diff.parts, names));
  return h(
    'div',
    { className: cls('diff') },
    target,
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

/** One fix: its card, redrawn in place when the kernel updates it or the notebook changes. */
class FixCard {
  readonly node: HTMLElement;
  private labels: HTMLElement;
  private detail: HTMLElement;
  private apply: HTMLButtonElement;
  private undo: HTMLButtonElement;
  private status: HTMLElement;
  private extra: HTMLElement;
  private busy = false;
  private shown: IStatus | null = null;

  constructor(
    private fix: IFixView,
    private controller: FixController,
    names: CellNames,
    private link: ILink | null,
    alternative: boolean
  ) {
    this.apply = h('button', { className: cls('button', 'primary'), attrs: { type: 'button' } }, 'Apply');
    this.undo = h('button', { className: cls('button'), attrs: { type: 'button' } }, 'Undo');
    this.status = h('p', { className: cls('status'), attrs: { role: 'status', 'aria-live': 'polite' } });
    this.extra = h('div', { className: cls('statusExtra') });
    this.labels = renderLabels(fix);
    this.detail = h('p', { className: cls('verificationDetail') });
    this.apply.addEventListener('click', () => void this.run('apply'));
    this.undo.addEventListener('click', () => void this.run('undo'));
    this.node = h(
      'div',
      {
        className: cls('fix', alternative && 'alternative'),
        attrs: { 'data-fix-index': String(fix.index), role: 'group', 'aria-label': `Fix: ${fix.title}` }
      },
      h(
        'div',
        { className: cls('fixSummary') },
        h('span', { className: cls('fixTitle') }, alternative ? '' : 'Fix: ', ...rich(fix.title)),
        ' ',
        this.labels
      ),
      fix.description_parts.length > 0 &&
        h('p', { className: cls('fixDescription') }, ...segments(fix.description_parts, names)),
      ...fix.diffs.map(diff => renderDiff(diff, names)),
      fix.notes.length > 0 &&
        h('ul', { className: cls('fixNotes') }, ...fix.notes.map(n => h('li', {}, ...rich(n)))),
      this.detail,
      h('div', { className: cls('actions') }, this.apply, this.undo, this.status),
      this.extra
    );
    this.refresh();
  }

  update(fix: IFixView, link: ILink | null): void {
    this.link = link;
    if (JSON.stringify(fix.labels) !== JSON.stringify(this.fix.labels)) {
      const labels = renderLabels(fix);
      this.labels.replaceWith(labels);
      this.labels = labels;
    }
    this.fix = fix;
    this.refresh();
  }

  private refresh(): void {
    const fix = this.fix;
    const link = this.link;
    this.detail.textContent = fix.verification.detail;
    const applied = link ? link.appliedFix === fix.index : this.controller.pathOf(fix) !== null;
    const otherApplied = link !== null && link.appliedFix !== null && link.appliedFix !== fix.index;
    const refusal = !fix.can_apply ? fix.verification.detail : link?.refusal && !applied ? link.refusal : '';
    this.apply.disabled = this.busy || applied || otherApplied || !!refusal;
    this.apply.title =
      refusal || (otherApplied ? 'Another fix of this diagnosis is applied; undo it first.' : '');
    this.undo.disabled = this.busy || !applied;
    if (!this.shown && !this.busy) {
      // nothing done here yet: say why Apply is not offered, if it is not
      this.status.replaceChildren(...(refusal && fix.can_apply ? present(rich(refusal)) : []));
    }
  }

  private show(result: IStatus): void {
    this.shown = result;
    this.status.replaceChildren(...present(rich(result.message)));
    this.status.dataset.path = result.path;
    this.status.dataset.applied = String(result.applied);
    this.extra.replaceChildren(...[renderCopy(result)].filter((n): n is HTMLElement => n !== null));
  }

  private async run(action: 'apply' | 'undo'): Promise<void> {
    this.busy = true;
    this.refresh();
    this.status.textContent = action === 'apply' ? 'Applying…' : 'Undoing…';
    const result =
      action === 'apply' ? await this.controller.apply(this.fix) : await this.controller.undo(this.fix);
    this.busy = false;
    this.show(result);
    this.refresh();
  }
}

/** The fixes of one panel: the best one, and the others for the "Other fixes" tab. */
export class FixList {
  readonly best: HTMLElement;
  readonly alternatives: HTMLElement;
  private cards: FixCard[];

  constructor(fixes: IFixView[], controller: FixController, names: CellNames, link: ILink | null) {
    this.cards = fixes.map((fix, i) => new FixCard(fix, controller, names, link, i > 0));
    this.best = this.cards.length
      ? h('div', { className: cls('fixes') }, this.cards[0].node)
      : h(
          'p',
          { className: cls('empty') },
          'No fix was found automatically: the explanation ("Why") says what to change.'
        );
    this.alternatives = h('div', { className: cls('alternatives') }, ...this.cards.slice(1).map(c => c.node));
  }

  update(fixes: IFixView[], link: ILink | null): void {
    fixes.forEach((fix, i) => this.cards[i]?.update(fix, link));
  }
}
