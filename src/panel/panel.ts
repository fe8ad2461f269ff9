/**
 * The diagnosis panel: headline, the two operations with their locations, the tensor, then the
 * graph, the version timeline and the fixes, each in a section that folds.
 */
import type { AnyModel } from '@anywidget/types';

import { DEFAULT_TIMEOUTS, FixController, type ITimeouts } from './apply';
import { cls, h, rich, type Child } from './dom';
import { renderFixes } from './fixes';
import { renderGraph } from './graphView';
import { REVEAL_EVENT, stateProblem } from './events';
import { renderLocation, renderTimeline } from './timeline';
import { PROTOCOL_VERSION, type IPanelModel, type IPanelState, type ISiteView, type IWhere } from './wire';

function section(title: string, body: HTMLElement, open = true): HTMLDetailsElement {
  const details = h(
    'details',
    { className: cls('section') },
    h('summary', { className: cls('sectionTitle') }, title),
    body
  );
  details.open = open;
  return details;
}

function site(title: string, view: ISiteView | null, reveal: (w: IWhere) => void): Child[] {
  if (!view) {
    return [];
  }
  const what: Child[] = [h('code', { className: cls('op') }, view.op)];
  if (view.module) {
    what.push(' in ', h('code', { className: cls('module') }, view.module));
  }
  if (view.module_type) {
    what.push(' ', h('span', { className: cls('moduleType') }, `(${view.module_type})`));
  }
  what.push(' — ', view.role);
  return [
    h('dt', { className: cls('siteTitle') }, title),
    h(
      'dd',
      { className: cls('site') },
      h('div', {}, ...what),
      view.where && renderLocation(view.where, reveal),
      view.defined_at &&
        h('div', { className: cls('builtAt') }, 'built at ', renderLocation(view.defined_at, reveal)),
      ...view.callers
        .slice(0, 2)
        .map(c => h('div', { className: cls('caller') }, 'called from ', renderLocation(c, reveal)))
    )
  ];
}

function tensorLine(state: IPanelState): HTMLElement | null {
  const t = state.tensor;
  if (!t) {
    return null;
  }
  const parts: Child[] = ['Tensor ', h('code', {}, t.label)];
  if (t.parameter) {
    parts.push(', parameter ', h('code', {}, t.parameter));
  }
  if (t.is_leaf) {
    parts.push(', a leaf that requires grad');
  }
  if (t.saved_version !== null && t.version !== null) {
    parts.push(`, saved at v${t.saved_version}, now at v${t.version}`);
  }
  return h('p', { className: cls('tensor') }, ...parts);
}

function body(
  state: IPanelState,
  controller: FixController,
  reveal: (w: IWhere) => void,
  hint: HTMLElement
): HTMLElement {
  const saverTitle = state.kind === 'view_inplace' ? 'View created by' : 'Saved for backward by';
  const writerTitle = state.optimizer_step ? 'Updated in place by' : 'Written in place by';
  return h(
    'section',
    {
      className: cls('panel'),
      attrs: {
        role: 'region',
        'aria-label': 'In-place autograd error diagnosis',
        'data-diagnosis-id': state.id
      }
    },
    h(
      'div',
      { className: cls('header') },
      h('span', { className: cls('kind', state.kind) }, state.kind_label),
      h(
        'p',
        { className: cls('headline'), attrs: { role: 'heading', 'aria-level': '3' } },
        ...rich(state.headline)
      )
    ),
    !state.reproduced &&
      h(
        'p',
        { className: cls('warning') },
        'The replay did not raise the same error: this diagnosis may be incomplete.'
      ),
    state.explanation && h('p', { className: cls('explanation') }, ...rich(state.explanation)),
    h(
      'dl',
      { className: cls('sites') },
      ...site(writerTitle, state.writer, reveal),
      ...site(saverTitle, state.saver, reveal),
      ...state.also_written_by.flatMap(s => site('Also written by', s, reveal))
    ),
    tensorLine(state),
    hint,
    section('Graph', renderGraph(state.graph, { onReveal: reveal })),
    section('Version timeline', renderTimeline(state.timeline, reveal)),
    section(
      state.fixes.length > 1 ? `Fixes (${state.fixes.length})` : 'Fix',
      renderFixes(state.fixes, controller)
    ),
    state.notes.length > 0 &&
      h('ul', { className: cls('notes') }, ...state.notes.map(n => h('li', {}, ...rich(n)))),
    section(
      'Original error',
      h('pre', { className: cls('error') }, `${state.error.type}: ${state.error.message}`),
      false
    )
  );
}

/** Render the panel into `el` and keep it in sync with the model; returns the cleanup. */
export function renderPanel(
  el: HTMLElement,
  model: AnyModel<IPanelModel>,
  timeouts: ITimeouts = DEFAULT_TIMEOUTS
): () => void {
  const draw = (): void => {
    const state = model.get('state');
    const problem = stateProblem(state);
    if (problem) {
      el.replaceChildren(h('p', { className: cls('warning'), attrs: { role: 'alert' } }, problem));
      return;
    }
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
    const controller = new FixController(el, model, state, timeouts);
    el.replaceChildren(body(state, controller, reveal, hint));
  };
  draw();
  model.on('change:state', draw);
  return () => model.off('change:state', draw);
}
