/**
 * The diagnosis panel, compact and headline first: the kind and the headline, the writer and the
 * saver on one line each, the best fix with its diff and Apply/Undo; then tabs, closed until asked
 * for, with the graph, the version timeline, the explanation, the other fixes and the notes.
 *
 * The kernel may update the state while the panel is shown (a fix's verification): the fixes are
 * redrawn in place and nothing else moves. The notebook, when a JupyterLab extension links the panel
 * (./events `LINK_EVENT`), names the cells as it shows them now and says which fix is applied.
 */
import type { AnyModel } from '@anywidget/types';

import { DEFAULT_TIMEOUTS, FixController, type ITimeouts } from './apply';
import { cls, h, rich, type Child } from './dom';
import { LINK_EVENT, REVEAL_EVENT, stateProblem, type ILink, type ILinkDetail } from './events';
import { FixList } from './fixes';
import { renderGraph } from './graphView';
import { CellNames, cellRefs, segments } from './text';
import { renderLocation, renderTimeline } from './timeline';
import { PROTOCOL_VERSION, type IPanelModel, type IPanelState, type ISiteView, type IWhere } from './wire';

export const PANEL_LABEL = 'In-place autograd error diagnosis';

function siteRow(
  title: string,
  view: ISiteView | null,
  reveal: (w: IWhere) => void,
  names: CellNames
): Child[] {
  if (!view) {
    return [];
  }
  const what: Child[] = [h('code', { className: cls('op'), attrs: { title: view.op_full } }, view.op)];
  if (view.module) {
    const attrs: Record<string, string> = view.module_type ? { title: view.module_type } : {};
    what.push(' in ', h('code', { className: cls('module'), attrs }, view.module));
  }
  if (view.where) {
    what.push(' at ', renderLocation(view.where, reveal, names));
  }
  if (view.defined_at) {
    what.push(
      h(
        'span',
        { className: cls('builtAt') },
        'built at ',
        renderLocation(view.defined_at, reveal, names, false)
      )
    );
  }
  return [
    h(
      'div',
      { className: cls('siteRow') },
      h('dt', { className: cls('siteTitle') }, title),
      h('dd', { className: cls('site') }, ...what)
    )
  ];
}

interface ITab {
  id: string;
  title: string;
  body: () => HTMLElement;
}

/** A row of tabs over one panel; a tab opens on click (its body built then) and closes on a second. */
function tabs(items: ITab[], panelId: string): HTMLElement {
  const row = h('div', {
    className: cls('tabs'),
    attrs: { role: 'tablist', 'aria-label': 'More about this diagnosis' }
  });
  const area = h('div', { className: cls('tabArea') });
  const built = new Map<string, HTMLElement>();
  const buttons: HTMLButtonElement[] = [];
  const select = (item: ITab | null): void => {
    buttons.forEach(b => b.setAttribute('aria-selected', String(item !== null && b.dataset.tab === item.id)));
    built.forEach(body => (body.hidden = true));
    if (item) {
      let body = built.get(item.id);
      if (!body) {
        body = h(
          'div',
          {
            className: cls('tabPanel'),
            attrs: { role: 'tabpanel', id: `${panelId}-${item.id}`, 'aria-label': item.title }
          },
          item.body()
        );
        built.set(item.id, body);
        area.append(body);
      }
      body.hidden = false;
    }
  };
  for (const item of items) {
    const button = h(
      'button',
      {
        className: cls('tab'),
        attrs: {
          type: 'button',
          role: 'tab',
          'aria-selected': 'false',
          'aria-controls': `${panelId}-${item.id}`
        }
      },
      item.title
    );
    button.dataset.tab = item.id;
    button.addEventListener('click', () =>
      select(button.getAttribute('aria-selected') === 'true' ? null : item)
    );
    button.addEventListener('keydown', event => {
      const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
      if (step) {
        const next = buttons[(buttons.indexOf(button) + step + buttons.length) % buttons.length];
        next.focus();
        event.preventDefault();
      }
    });
    buttons.push(button);
    row.append(button);
  }
  return h('div', { className: cls('more') }, row, area);
}

let panels = 0;

function body(
  state: IPanelState,
  fixes: FixList,
  reveal: (w: IWhere) => void,
  hint: HTMLElement,
  names: CellNames
): HTMLElement {
  const saverTitle = state.kind === 'view_inplace' ? 'View made by' : 'Saved by';
  const writerTitle = state.optimizer_step ? 'Updated by' : 'Written by';
  panels += 1;
  const others = state.fixes.length - 1;
  const more: ITab[] = [
    {
      id: 'graph',
      title: 'Graph',
      body: () => renderGraph(state.graph, { onReveal: reveal, names })
    },
    {
      id: 'timeline',
      title: 'Version timeline',
      body: () => renderTimeline(state.timeline, reveal, names)
    }
  ];
  if (state.explanation_parts.length) {
    more.push({
      id: 'why',
      title: 'Why',
      body: () => h('p', { className: cls('explanation') }, ...segments(state.explanation_parts, names))
    });
  }
  if (others > 0) {
    more.push({ id: 'fixes', title: `Other fixes (${others})`, body: () => fixes.alternatives });
  }
  if (state.notes.length) {
    more.push({
      id: 'notes',
      title: `Notes (${state.notes.length})`,
      body: () => h('ul', { className: cls('notes') }, ...state.notes.map(n => h('li', {}, ...rich(n))))
    });
  }
  return h(
    'section',
    {
      className: cls('panel'),
      attrs: { role: 'region', 'aria-label': PANEL_LABEL, 'data-diagnosis-id': state.id }
    },
    h(
      'div',
      { className: cls('header') },
      h('span', { className: cls('kind', state.kind) }, state.kind_label),
      h(
        'p',
        { className: cls('headline'), attrs: { role: 'heading', 'aria-level': '3' } },
        ...segments(state.headline_parts, names)
      )
    ),
    !state.reproduced &&
      h(
        'p',
        { className: cls('warning') },
        'The replay did not raise the same error: this diagnosis may be incomplete.'
      ),
    h(
      'dl',
      { className: cls('sites') },
      ...siteRow(writerTitle, state.writer, reveal, names),
      ...siteRow(saverTitle, state.saver, reveal, names),
      ...state.also_written_by.flatMap(s => siteRow('Also by', s, reveal, names))
    ),
    hint,
    fixes.best,
    tabs(more, `jp-InplaceMagic-p${panels}`)
  );
}

/** Everything of a state but its fixes, to tell a verification update from a new diagnosis. */
function withoutFixes(state: IPanelState): string {
  return JSON.stringify({ ...state, fixes: state.fixes.map(f => f.index) });
}

/** Ask the page's notebook (a JupyterLab extension) to link this panel, once it is in the page. */
function requestLink(el: HTMLElement, state: () => IPanelState, onLink: (link: ILink) => void): () => void {
  let frame = 0;
  let stopped = false;
  const ask = (): void => {
    if (stopped) {
      return;
    }
    if (!el.isConnected) {
      frame = requestAnimationFrame(ask); // anywidget renders before the output is attached
      return;
    }
    const current = state();
    const detail: ILinkDetail = {
      protocol: PROTOCOL_VERSION,
      diagnosisId: current.id,
      cells: cellRefs(current),
      update: link => {
        if (!stopped) {
          onLink(link);
        }
      }
    };
    el.dispatchEvent(
      new CustomEvent(LINK_EVENT, { bubbles: true, composed: true, cancelable: true, detail })
    );
  };
  ask();
  return () => {
    stopped = true;
    cancelAnimationFrame(frame);
  };
}

/** Render the panel into `el` and keep it in sync with the model; returns the cleanup. */
export function renderPanel(
  el: HTMLElement,
  model: AnyModel<IPanelModel>,
  timeouts: ITimeouts = DEFAULT_TIMEOUTS
): () => void {
  const names = new CellNames(el);
  let state = model.get('state');
  let drawn: { key: string; fixes: FixList } | null = null;
  let link: ILink | null = null;
  const controller = new FixController(el, model, () => state, timeouts);
  const hint = h('p', { className: cls('hint'), attrs: { 'aria-live': 'polite' } });
  const reveal = (where: IWhere): void => {
    const event = new CustomEvent(REVEAL_EVENT, {
      bubbles: true,
      composed: true,
      cancelable: true,
      detail: { protocol: PROTOCOL_VERSION, diagnosisId: state.id, where }
    });
    const unhandled = el.dispatchEvent(event);
    hint.textContent = unhandled ? `${where.label}${where.code ? `: ${where.code}` : ''}` : '';
  };
  const draw = (): void => {
    state = model.get('state');
    const problem = stateProblem(state);
    if (problem) {
      drawn = null;
      el.replaceChildren(h('p', { className: cls('warning'), attrs: { role: 'alert' } }, problem));
      return;
    }
    const key = withoutFixes(state);
    if (drawn && drawn.key === key) {
      drawn.fixes.update(state.fixes, link); // a verification update: the fixes change, nothing moves
      return;
    }
    const fixes = new FixList(state.fixes, controller, names, link);
    drawn = { key, fixes };
    el.replaceChildren(body(state, fixes, reveal, hint, names));
    if (link) {
      names.update(link.names);
    }
  };
  draw();
  const unlink = requestLink(
    el,
    () => state,
    update => {
      link = update;
      names.update(update.names);
      drawn?.fixes.update(state.fixes, update);
    }
  );
  model.on('change:state', draw);
  return () => {
    unlink();
    model.off('change:state', draw);
  };
}
