/**
 * The sidebar: the diagnoses of the active notebook's kernel, newest first, one per failing cell,
 * each with its kind, headline, writer and saver (click to reveal), status, the fix's verification,
 * Apply/Undo and a dismiss button. The cells are named as the notebook shows them now. Plain DOM (no
 * user text is ever parsed as HTML); JupyterLab's CSS variables give it every theme.
 */
import type { Message } from '@lumino/messaging';
import { type ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { cls, h, present, rich } from '../panel/dom';
import { refKey } from '../panel/events';
import { CellNames, cellRefs, segments } from '../panel/text';
import type { IFixView, ISiteView, IWhere } from '../panel/wire';
import type { DiagnosisStatus, IDiagnosisEntry } from './model';
import type { ISidebarSource } from './session';
import type { ITrans } from './trans';

export const SIDEBAR_ID = 'jp-InplaceMagic-sidebar';

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function button(className: string, text: string, title: string): HTMLButtonElement {
  const node = el('button', `${className} jp-mod-styled`, text);
  node.type = 'button';
  node.title = title;
  return node;
}

export class DiagnosisSidebar extends Widget {
  private source: ISidebarSource | null = null;
  private busy = new Set<string>();
  private shownSignal = new Signal<this, void>(this);

  constructor(private trans: ITrans) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-InplaceMagic-sidebar');
    this.title.caption = trans.__('In-place autograd diagnoses');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('In-place autograd diagnoses'));
    this.render();
  }

  /** Follow a notebook (null: no notebook is active). */
  setSource(source: ISidebarSource | null): void {
    if (source === this.source) {
      return;
    }
    this.source?.list.changed.disconnect(this.render, this);
    this.source?.renamed.disconnect(this.render, this);
    this.source = source;
    source?.list.changed.connect(this.render, this);
    source?.renamed.connect(this.render, this);
    this.render();
  }

  get current(): ISidebarSource | null {
    return this.source;
  }

  /** The sidebar became visible: what it lists is seen. */
  get shown(): ISignal<this, void> {
    return this.shownSignal;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.shownSignal.emit();
  }

  render(): void {
    const node = this.node;
    // a redraw keeps the keyboard where it was (choosing a fix with the arrow keys redraws)
    const focused = node.contains(document.activeElement)
      ? (document.activeElement as HTMLElement).dataset.focusKey
      : undefined;
    this.draw();
    if (focused) {
      [...node.querySelectorAll<HTMLElement>('[data-focus-key]')]
        .find(candidate => candidate.dataset.focusKey === focused)
        ?.focus();
    }
  }

  private draw(): void {
    const node = this.node;
    node.replaceChildren();
    const header = el('header', 'jp-InplaceMagic-sidebarHeader');
    header.append(el('h2', 'jp-InplaceMagic-sidebarTitle', this.trans.__('In-place diagnoses')));
    const source = this.source;
    if (source) {
      header.append(el('div', 'jp-InplaceMagic-sidebarNotebook', source.title));
    }
    node.append(header);
    if (!source) {
      node.append(el('p', 'jp-InplaceMagic-empty', this.trans.__('Open a notebook to see its diagnoses.')));
      return;
    }
    if (source.list.problem) {
      const banner = el('div', 'jp-InplaceMagic-problem', source.list.problem);
      banner.setAttribute('role', 'alert');
      node.append(banner);
    }
    const entries = source.list.entries;
    if (!entries.length) {
      const empty = el('div', 'jp-InplaceMagic-empty');
      empty.append(
        el('p', '', this.trans.__('No diagnoses for this notebook yet.')),
        h(
          'p',
          {},
          ...rich(
            this.trans.__(
              'Run `%load_ext inplace_magic`, then a failing training cell under `%%gradcheck` (or turn on `%gradcheck on`): each in-place autograd error appears here with its fix.'
            )
          )
        )
      );
      node.append(empty);
      return;
    }
    const list = el('ul', 'jp-InplaceMagic-list');
    list.setAttribute('aria-label', this.trans.__('Diagnoses'));
    for (const entry of entries) {
      list.append(this.renderEntry(source, entry));
    }
    node.append(list);
  }

  private statusLabel(status: DiagnosisStatus): string {
    switch (status) {
      case 'new':
        return this.trans.__('new');
      case 'applied':
        return this.trans.__('applied');
      case 'stale':
        return this.trans.__('stale');
    }
  }

  private renderEntry(source: ISidebarSource, entry: IDiagnosisEntry): HTMLLIElement {
    const { state } = entry;
    const item = el('li', `jp-InplaceMagic-entry jp-InplaceMagic-${entry.status}`);
    item.dataset.diagnosisId = state.id;
    item.dataset.status = entry.status;
    const selected = source.list.selected?.state.id === state.id;
    item.classList.toggle('jp-mod-selected', selected);
    item.setAttribute('aria-label', source.text(state.headline_parts) || state.headline);
    item.addEventListener('click', () => source.list.select(state.id));

    // the cells named as the notebook shows them now
    const names = new CellNames(item);
    const known: Record<string, string> = {};
    for (const ref of cellRefs(state)) {
      const key = refKey({ cell: ref.cell, cell_id: ref.cellId });
      const name = source.name({ cell: ref.cell, cell_id: ref.cellId });
      if (key !== null && name !== null) {
        known[key] = name;
      }
    }
    names.update(known);

    const top = el('div', 'jp-InplaceMagic-sidebarEntryTop');
    top.append(el('span', 'jp-InplaceMagic-sidebarKind', state.kind_label));
    const status = el('span', 'jp-InplaceMagic-sidebarStatus', this.statusLabel(entry.status));
    status.title = entry.reason;
    const dismiss = button('jp-InplaceMagic-dismiss', '×', this.trans.__('Dismiss this diagnosis'));
    dismiss.setAttribute('aria-label', this.trans.__('Dismiss'));
    dismiss.addEventListener('click', event => {
      event.stopPropagation();
      source.dismiss(state.id);
    });
    top.append(status, dismiss);
    const headline = h(
      'p',
      { className: 'jp-InplaceMagic-sidebarHeadline' },
      ...segments(state.headline_parts, names)
    );
    item.append(top, headline);

    const sites = el('dl', 'jp-InplaceMagic-sidebarSites');
    this.site(sites, source, this.trans.__('Writer'), state.writer, names);
    if (state.kind !== 'leaf_inplace') {
      this.site(sites, source, this.trans.__('Saver'), state.saver, names);
    }
    item.append(sites);
    if (entry.reason) {
      item.append(h('p', { className: 'jp-InplaceMagic-reason' }, ...rich(entry.reason)));
    }
    item.append(this.actions(source, entry));
    if (entry.message && entry.message !== entry.reason) {
      const message = h('p', { className: 'jp-InplaceMagic-message' }, ...rich(entry.message));
      message.setAttribute('role', 'status');
      item.append(message);
    }
    return item;
  }

  private site(
    list: HTMLElement,
    source: ISidebarSource,
    title: string,
    site: ISiteView | null,
    names: CellNames
  ): void {
    list.append(el('dt', '', title));
    const value = el('dd', '');
    if (!site) {
      value.textContent = this.trans.__('not recorded');
      list.append(value);
      return;
    }
    const op = el('code', 'jp-InplaceMagic-sidebarOp', site.module ?? site.op);
    op.title = site.module ? `${site.op} · ${site.module_type ?? site.module}` : site.op_full;
    value.append(op);
    const where: IWhere | null = site.where;
    if (where) {
      const go = button(
        'jp-InplaceMagic-sidebarLocation',
        '',
        this.trans.__('Show this line in the notebook')
      );
      go.append(...present(segments(where.parts, names)));
      go.addEventListener('click', event => {
        event.stopPropagation();
        void source.reveal(where);
      });
      value.append(' ', go);
    }
    list.append(value);
  }

  private actions(source: ISidebarSource, entry: IDiagnosisEntry): HTMLElement {
    const { state } = entry;
    const box = el('div', 'jp-InplaceMagic-sidebarActions');
    if (!state.fixes.length) {
      box.append(el('span', 'jp-InplaceMagic-noFix', this.trans.__('No fix suggested.')));
      return box;
    }
    const busy = this.busy.has(state.id);
    const chosen = state.fixes.find(f => f.index === entry.chosenFix) ?? state.fixes[0];
    const applied = state.fixes.find(f => f.index === entry.appliedFix);
    const shown = applied ?? chosen;
    if (!applied && state.fixes.length > 1) {
      // one radio per fix, its whole title wrapped: a select would cut the titles at this width
      const group = el('div', 'jp-InplaceMagic-fixChoices');
      group.setAttribute('role', 'radiogroup');
      group.setAttribute('aria-label', this.trans.__('Fix to apply'));
      for (const fix of state.fixes) {
        const radio = el('input', 'jp-InplaceMagic-fixRadio');
        radio.type = 'radio';
        radio.name = `jp-InplaceMagic-fix-${state.id}`;
        radio.value = String(fix.index);
        radio.checked = fix.index === chosen.index;
        radio.dataset.focusKey = `${state.id}:fix:${fix.index}`;
        radio.addEventListener('change', () => source.list.choose(state.id, fix.index));
        const choice = h(
          'label',
          { className: 'jp-InplaceMagic-fixChoice' },
          radio,
          h('span', { className: 'jp-InplaceMagic-fixChoiceTitle' }, ...rich(fix.title)),
          this.verification(fix)
        );
        choice.addEventListener('click', event => event.stopPropagation());
        group.append(choice);
      }
      box.append(group);
    } else {
      box.append(
        h('span', { className: 'jp-InplaceMagic-sidebarFixTitle' }, ...rich(shown.title)),
        this.verification(shown)
      );
    }
    const semantics = shown.labels.find(l => l.tag === 'changes-semantics');
    if (semantics && shown.verification.status !== 'changes_semantics') {
      box.append(el('span', 'jp-InplaceMagic-semantics', semantics.text));
    }
    if (applied) {
      const undo = button(
        'jp-InplaceMagic-undo',
        this.trans.__('Undo'),
        this.trans.__('Restore the cells as they were')
      );
      undo.disabled = busy;
      undo.addEventListener('click', event => {
        event.stopPropagation();
        void this.run(state.id, () => source.undo(state.id));
      });
      box.append(undo);
      return box;
    }
    const apply = button(
      'jp-InplaceMagic-apply jp-mod-accept',
      this.trans.__('Apply fix'),
      chosen.title.replace(/`/g, '')
    );
    const why = entry.status !== 'new' ? entry.reason : !chosen.can_apply ? chosen.verification.detail : '';
    apply.disabled = busy || !!why;
    if (why) {
      apply.title = why;
    }
    apply.addEventListener('click', event => {
      event.stopPropagation();
      void this.run(state.id, () => source.apply(state.id, chosen.index));
    });
    box.append(apply);
    return box;
  }

  /** The kernel's words for how far the fix was checked, as every face shows them. */
  private verification(fix: IFixView): HTMLElement {
    const verification = el(
      'span',
      `jp-InplaceMagic-sidebarVerification jp-InplaceMagic-verification--${fix.verification.status}`
    );
    if (fix.verification.status === 'verifying') {
      verification.append(h('span', { className: cls('spinner'), attrs: { 'aria-hidden': 'true' } }));
    }
    verification.append(fix.verification.label);
    verification.title = fix.verification.detail;
    return verification;
  }

  private async run(id: string, action: () => Promise<unknown>): Promise<void> {
    this.busy.add(id);
    this.render();
    try {
      await action();
    } finally {
      this.busy.delete(id);
      this.render();
    }
  }
}
