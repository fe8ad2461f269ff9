/**
 * The sidebar: the diagnoses of the active notebook's kernel, newest first, each with its kind,
 * headline, writer and saver (click to reveal), status, and Apply/Undo. Plain DOM (no user text is
 * ever parsed as HTML); JupyterLab's CSS variables give it every theme.
 */
import { Widget } from '@lumino/widgets';

import type { ISiteView, IWhere } from '../panel/wire';
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

export function whereLabel(where: IWhere, trans: ITrans): string {
  if (where.cell !== undefined) {
    return trans.__('cell %1, line %2', where.cell, where.line);
  }
  return trans.__('%1, line %2', where.file ?? '?', where.line);
}

export class DiagnosisSidebar extends Widget {
  private source: ISidebarSource | null = null;
  private busy = new Set<string>();

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
    this.source = source;
    source?.list.changed.connect(this.render, this);
    this.render();
  }

  get current(): ISidebarSource | null {
    return this.source;
  }

  render(): void {
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
        el(
          'p',
          '',
          this.trans.__(
            'Run `%load_ext inplace_magic`, then a failing training cell under `%%gradcheck` (or turn on `%gradcheck on`): each in-place autograd error appears here with its fix.'
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
      case 'superseded':
        return this.trans.__('superseded');
    }
  }

  private renderEntry(source: ISidebarSource, entry: IDiagnosisEntry): HTMLLIElement {
    const { state } = entry;
    const item = el('li', `jp-InplaceMagic-entry jp-InplaceMagic-${entry.status}`);
    item.dataset.diagnosisId = state.id;
    item.dataset.status = entry.status;
    const selected = source.list.selected?.state.id === state.id;
    item.classList.toggle('jp-mod-selected', selected);
    item.setAttribute('aria-label', state.headline);
    item.addEventListener('click', () => source.list.select(state.id));

    const top = el('div', 'jp-InplaceMagic-sidebarEntryTop');
    top.append(el('span', 'jp-InplaceMagic-sidebarKind', state.kind_label));
    const status = el('span', 'jp-InplaceMagic-sidebarStatus', this.statusLabel(entry.status));
    status.title = entry.reason;
    top.append(status);
    item.append(top, el('p', 'jp-InplaceMagic-sidebarHeadline', state.headline));

    const sites = el('dl', 'jp-InplaceMagic-sidebarSites');
    this.site(sites, source, this.trans.__('Writer'), state.writer);
    if (state.kind !== 'leaf_inplace') {
      this.site(sites, source, this.trans.__('Saver'), state.saver);
    }
    item.append(sites);
    if (entry.reason) {
      item.append(el('p', 'jp-InplaceMagic-reason', entry.reason));
    }
    item.append(this.actions(source, entry));
    if (entry.message && entry.message !== entry.reason) {
      const message = el('p', 'jp-InplaceMagic-message', entry.message);
      message.setAttribute('role', 'status');
      item.append(message);
    }
    return item;
  }

  private site(list: HTMLElement, source: ISidebarSource, title: string, site: ISiteView | null): void {
    list.append(el('dt', '', title));
    const value = el('dd', '');
    if (!site) {
      value.textContent = this.trans.__('not recorded');
      list.append(value);
      return;
    }
    value.append(el('code', 'jp-InplaceMagic-sidebarOp', site.op));
    const where = site.where;
    if (where) {
      const go = el('button', 'jp-InplaceMagic-sidebarLocation jp-mod-styled', whereLabel(where, this.trans));
      go.type = 'button';
      go.title = this.trans.__('Show %1 in the notebook', where.code ?? whereLabel(where, this.trans));
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
    if (entry.status === 'applied') {
      const undo = el('button', 'jp-InplaceMagic-undo jp-mod-styled', this.trans.__('Undo'));
      undo.type = 'button';
      undo.disabled = busy;
      undo.addEventListener('click', event => {
        event.stopPropagation();
        void this.run(state.id, () => source.undo(state.id));
      });
      box.append(undo);
      return box;
    }
    const chosen = state.fixes.find(f => f.index === entry.chosenFix) ?? state.fixes[0];
    if (state.fixes.length > 1) {
      const select = el('select', 'jp-InplaceMagic-fixChoice');
      select.setAttribute('aria-label', this.trans.__('Fix to apply'));
      for (const fix of state.fixes) {
        const option = el('option', '', fix.title);
        option.value = String(fix.index);
        option.selected = fix.index === chosen.index;
        select.append(option);
      }
      select.addEventListener('click', event => event.stopPropagation());
      select.addEventListener('change', () => source.list.choose(state.id, Number(select.value)));
      box.append(select);
    } else {
      box.append(el('span', 'jp-InplaceMagic-sidebarFixTitle', chosen.title));
    }
    // the kernel's words for it, as every face shows them
    const semantics = chosen.labels.find(l => l.tag === 'changes-semantics');
    if (semantics) {
      box.append(el('span', 'jp-InplaceMagic-semantics', semantics.text));
    }
    const apply = el(
      'button',
      'jp-InplaceMagic-apply jp-mod-styled jp-mod-accept',
      this.trans.__('Apply fix')
    );
    apply.type = 'button';
    apply.disabled = busy || entry.status !== 'new';
    apply.title = entry.status === 'new' ? chosen.title : entry.reason;
    apply.addEventListener('click', event => {
      event.stopPropagation();
      void this.run(state.id, () => source.apply(state.id, chosen.index));
    });
    box.append(apply);
    return box;
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
