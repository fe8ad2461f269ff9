import { afterEach, describe, expect, it } from 'vitest';

import type { ITimeouts } from '../apply';
import { renderPanel } from '../panel';
import {
  APPLY_EVENT,
  LINK_EVENT,
  REVEAL_EVENT,
  UNDO_EVENT,
  type IApplyDetail,
  type ILinkDetail
} from '../events';
import { PROTOCOL_VERSION, type IApplyRequest, type IOutcome, type IPanelState } from '../wire';
import { FakeModel, state, type FixtureName } from './fixtures';

const FAST: ITimeouts = { claim: 20, respond: 200, kernel: 200 };

let cleanups: (() => void)[] = [];
afterEach(() => {
  cleanups.forEach(c => c());
  cleanups = [];
  document.body.replaceChildren();
});

function mount(panelState: IPanelState, kernel: ((r: IApplyRequest) => IOutcome | null) | null = null) {
  const el = document.createElement('div');
  document.body.appendChild(el);
  const model = new FakeModel(panelState, kernel);
  renderPanel(el, model, FAST);
  return { el, model };
}

function listen<T>(name: string, handler: (event: CustomEvent<T>) => void): void {
  const listener = (event: Event): void => handler(event as CustomEvent<T>);
  document.addEventListener(name, listener);
  cleanups.push(() => document.removeEventListener(name, listener));
}

const q = (el: Element, selector: string): Element[] => [...el.querySelectorAll(selector)];

function button(el: Element, text: string): HTMLButtonElement {
  const found = q(el, 'button').find(b => b.textContent === text) as HTMLButtonElement | undefined;
  if (!found) {
    throw new Error(`no button ${text}`);
  }
  return found;
}

function click(el: Element, text: string): void {
  button(el, text).click();
}

/** Open the panel's tab `name` (the graph, the timeline... are closed until asked for). */
function tab(el: Element, name: string): Element {
  const found = q(el, '[role=tab]').find(t => t.textContent === name) as HTMLButtonElement | undefined;
  if (!found) {
    throw new Error(`no tab ${name}`);
  }
  if (found.getAttribute('aria-selected') !== 'true') {
    found.click();
  }
  return el.querySelector(`#${found.getAttribute('aria-controls')}`)!;
}

const best = (el: Element): Element => el.querySelector('.jp-InplaceMagic-fix')!;

async function settled(el: Element): Promise<HTMLElement> {
  for (let i = 0; i < 100; i++) {
    const status = el.querySelector<HTMLElement>('.jp-InplaceMagic-status[data-path]');
    if (status) {
      return status;
    }
    await new Promise(r => setTimeout(r, 10));
  }
  throw new Error('no status');
}

describe('rendering the panel', () => {
  it.each<[FixtureName, string[], string]>([
    ['skip_connection', ['writer', 'merge', 'saver', 'split', 'tensor', 'backward'], 'x += residual'],
    ['optimizer_step', ['optimizer', 'saver', 'tensor', 'backward'], 'opt_D.step()'],
    ['leaf', ['writer', 'tensor', 'leaf'], 's_batch -= s_learning_rate * s_batch.grad'],
    ['view', ['writer', 'saver', 'tensor'], 'return reparameterize(means, log_stds.clamp_(-20, 2))'],
    ['branch_cat', ['writer', 'merge', 'saver', 'split'], 'context = self.refine(feat0)']
  ])('%s: highlighted graph nodes, writer location, timeline', (name, roles, writerCode) => {
    const s = state(name);
    const { el } = mount(s);
    expect(el.querySelector('.jp-InplaceMagic-headline')!.textContent).toBe(s.headline.split('`').join(''));
    expect(el.querySelector('.jp-InplaceMagic-node'), 'the graph waits for its tab').toBeNull();
    tab(el, 'Graph');
    tab(el, 'Version timeline');
    for (const role of roles) {
      expect(q(el, `.jp-InplaceMagic-node--${role}`).length, role).toBeGreaterThan(0);
    }
    const writerNode = el.querySelector(
      name === 'optimizer_step' ? '.jp-InplaceMagic-node--optimizer' : '.jp-InplaceMagic-node--writer'
    )!;
    expect(writerNode.getAttribute('aria-label')).toContain(writerCode);
    expect(el.querySelector('.jp-InplaceMagic-site code.jp-InplaceMagic-code')!.textContent).toBe(writerCode);
    const steps = q(el, '.jp-InplaceMagic-timelineStep').map(
      li => li.querySelector('.jp-InplaceMagic-timelineText')!.textContent
    );
    expect(steps).toEqual(s.timeline.map(t => t.text.split('`').join('')));
  });

  it('headline first: short module names with the full repr on hover, no comments', () => {
    const s = state('skip_connection');
    const { el } = mount(s);
    const first = el.querySelector('.jp-InplaceMagic-panel > *')!;
    expect(first.querySelector('[role=heading]')).not.toBeNull();
    const codes = q(el.querySelector('.jp-InplaceMagic-headline')!, 'code').map(c => [
      c.textContent,
      c.getAttribute('title')
    ]);
    expect(codes).toEqual(s.headline_parts.filter(p => p.code).map(p => [p.text, p.title ?? null]));
    // no repr and no comment in the headline itself
    expect(el.querySelector('.jp-InplaceMagic-headline')!.textContent).not.toMatch(/\(inplace=|#/);
  });

  it('skip connection: the broken skip edge is highlighted and labelled for screen readers', () => {
    const { el } = mount(state('skip_connection'));
    tab(el, 'Graph');
    tab(el, 'Version timeline');
    const broken = q(el, '.jp-InplaceMagic-edge--broken');
    expect(broken.some(e => e.classList.contains('jp-InplaceMagic-edge--skip'))).toBe(true);
    expect(broken.map(e => e.getAttribute('aria-label')).join('\n')).toContain(
      'skip connection from add_ to add_'
    );
    const timeline = q(el, '.jp-InplaceMagic-timelineStep').map(li => li.textContent);
    expect(timeline[0]).toContain('saved at v1 by blocks.1.act2');
    expect(timeline[1]).toContain('(→v2)');
    expect(timeline[2]).toContain('needed at v1 by EluBackward1, but it is at v2');
  });

  it('shows the call sites on request, and a legend of what the styles mean', () => {
    const { el } = mount(state('skip_connection'));
    const graph = tab(el, 'Graph');
    const count = (): number => q(graph, '.jp-InplaceMagic-node').length;
    const start = count();
    expect(q(graph, '.jp-InplaceMagic-node--caller')).toHaveLength(0);
    const callers = button(graph, 'Call sites');
    callers.click();
    expect(callers.getAttribute('aria-pressed')).toBe('true');
    expect(count()).toBeGreaterThan(start);
    expect(q(graph, '.jp-InplaceMagic-node--caller').length).toBeGreaterThan(0);
    callers.click();
    expect(count()).toBe(start);
    expect(q(graph, '.jp-InplaceMagic-legendItem').map(i => i.textContent)).toContain(
      'the branch the write broke'
    );
  });

  it('the wheel scrolls the page; Ctrl and the wheel zoom', () => {
    const { el } = mount(state('leaf'));
    tab(el, 'Graph');
    const svg = el.querySelector('svg.jp-InplaceMagic-graphCanvas')!;
    const viewport = el.querySelector('.jp-InplaceMagic-graphViewport')!;
    const plain = new WheelEvent('wheel', { deltaY: -100, bubbles: true, cancelable: true });
    svg.dispatchEvent(plain);
    expect([plain.defaultPrevented, viewport.getAttribute('transform')]).toEqual([
      false,
      'translate(0 0) scale(1)'
    ]);
    const zoom = new WheelEvent('wheel', { deltaY: -100, ctrlKey: true, bubbles: true, cancelable: true });
    svg.dispatchEvent(zoom);
    expect([zoom.defaultPrevented, viewport.getAttribute('transform')]).toEqual([
      true,
      'translate(0 0) scale(1.1)'
    ]);
  });

  it('zooms and pans from the keyboard', () => {
    const { el } = mount(state('leaf'));
    tab(el, 'Graph');
    const svg = el.querySelector('svg.jp-InplaceMagic-graphCanvas')!;
    const viewport = el.querySelector('.jp-InplaceMagic-graphViewport')!;
    svg.dispatchEvent(new KeyboardEvent('keydown', { key: '+', bubbles: true }));
    expect(viewport.getAttribute('transform')).toContain('scale(1.25)');
    svg.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowLeft', bubbles: true }));
    expect(viewport.getAttribute('transform')).toContain('translate(30 0)');
    svg.dispatchEvent(new KeyboardEvent('keydown', { key: '0', bubbles: true }));
    expect(viewport.getAttribute('transform')).toBe('translate(0 0) scale(1)');
  });

  it('the diff shows the removed and added lines with context', () => {
    const { el } = mount(state('skip_connection'));
    const first = best(el);
    const del = q(first, '.jp-InplaceMagic-diffLine--del').map(l => l.textContent);
    const add = q(first, '.jp-InplaceMagic-diffLine--add').map(l => l.textContent);
    expect(del).toEqual(['removed: -         x += residual']);
    expect(add).toEqual(['added: +         x = x + residual']);
    expect(q(first, '.jp-InplaceMagic-diffLine--ctx').length).toBeGreaterThan(0);
  });

  it('labels fixes: verified and gradient-preserving, or changing the training semantics', () => {
    const labels = (name: FixtureName): string[] => {
      const { el } = mount(state(name));
      return q(best(el), '.jp-InplaceMagic-label').map(l => l.textContent!);
    };
    expect(labels('skip_connection')).toEqual(['verified', 'gradient-preserving']);
    expect(labels('optimizer_step')).toEqual(['verified', 'changes the training semantics']);
    // the words are the kernel's: a state in other words shows those
    const s = state('skip_connection');
    s.fixes[0].labels = [{ tag: 'verified', text: 'vérifié' }];
    const { el } = mount(s);
    const label = best(el).querySelector('.jp-InplaceMagic-label')!;
    expect([label.textContent, label.classList.contains('jp-InplaceMagic-label--verified')]).toEqual([
      'vérifié',
      true
    ]);
  });

  it('the other fixes wait in their tab, each with its own Apply', () => {
    const s = state('skip_connection');
    const { el } = mount(s);
    expect(q(el, '.jp-InplaceMagic-fix')).toHaveLength(1);
    const others = tab(el, `Other fixes (${s.fixes.length - 1})`);
    const cards = q(others, '.jp-InplaceMagic-fix');
    expect(cards.map(c => c.getAttribute('data-fix-index'))).toEqual(
      s.fixes.slice(1).map(f => String(f.index))
    );
    expect(cards.every(c => button(c, 'Apply'))).toBe(true);
  });

  it('a fix the kernel is verifying waits; its verdict arrives in place, nothing else moves', () => {
    const s = state('skip_connection');
    s.fixes[0] = {
      ...s.fixes[0],
      labels: [{ tag: 'verifying', text: 'verifying…' }],
      verification: { status: 'verifying', label: 'verifying…', detail: 'The kernel is running this fix.' },
      can_apply: false
    };
    const { el, model } = mount(s);
    const graph = tab(el, 'Graph');
    const apply = button(best(el), 'Apply');
    expect(apply.disabled).toBe(true);
    expect(apply.title).toBe('The kernel is running this fix.');
    expect(
      best(el).querySelector('.jp-InplaceMagic-label--verifying .jp-InplaceMagic-spinner')
    ).not.toBeNull();
    const verified = state('skip_connection');
    model.set('state', verified);
    expect(q(best(el), '.jp-InplaceMagic-label').map(l => l.textContent)).toEqual([
      'verified',
      'gradient-preserving'
    ]);
    expect(button(best(el), 'Apply')).toBe(apply); // the same card, updated
    expect(apply.disabled).toBe(false);
    expect(graph.isConnected && !(graph as HTMLElement).hidden).toBe(true); // the open tab stays open
  });

  it('renders user text as text: a <script> in code stays literal', () => {
    const s = state('leaf');
    const evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">';
    s.headline = evil;
    s.writer!.where!.code = evil;
    s.graph.nodes[0].text = evil;
    s.timeline[0].text = evil;
    s.fixes[0].diffs[0].lines[1].text = evil;
    s.fixes[0].title = evil;
    s.headline_parts = [{ text: evil }, { text: evil, code: true, title: evil }];
    const { el } = mount(s);
    tab(el, 'Graph');
    tab(el, 'Version timeline');
    expect(el.querySelectorAll('script, img').length).toBe(0);
    expect(el.querySelector('.jp-InplaceMagic-headline')!.textContent).toBe(evil + evil);
    expect(el.textContent!.split(evil).length - 1).toBeGreaterThanOrEqual(5);
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
  });

  it('a state from another protocol version says what to do', () => {
    const s = state('leaf');
    s.version = 99;
    const { el } = mount(s);
    // in the words of the kernel that made the state
    expect(el.querySelector('[role=alert]')!.textContent).toBe(s.mismatch);
    expect(s.mismatch).toContain('restart the kernel');
    const old = state('leaf') as unknown as Record<string, unknown>;
    old.version = 1;
    delete old.mismatch; // protocol 1 had no such field
    const { el: oldEl } = mount(old as unknown as IPanelState);
    expect(oldEl.querySelector('[role=alert]')!.textContent).toContain('restart the kernel');
  });

  it('clicking a location asks the notebook to show it', () => {
    const { el } = mount(state('skip_connection'));
    const seen: unknown[] = [];
    listen<{ where: { line: number } }>(REVEAL_EVENT, e => {
      seen.push(e.detail.where.line);
      e.preventDefault();
    });
    (el.querySelector('.jp-InplaceMagic-location') as HTMLButtonElement).click();
    expect(seen).toEqual([22]);
  });
});

describe('linked to its notebook', () => {
  it('names the cells as the notebook shows them now, and follows renames', () => {
    const s = state('skip_connection');
    let detail: ILinkDetail | null = null;
    listen<ILinkDetail>(LINK_EVENT, e => {
      e.preventDefault();
      detail = e.detail;
    });
    const { el } = mount(s);
    expect(detail).not.toBeNull();
    const linked = detail as unknown as ILinkDetail;
    expect(linked.diagnosisId).toBe(s.id);
    expect(linked.cells).toContainEqual({ cell: 0, cellId: null });
    const location = el.querySelector('.jp-InplaceMagic-location')!;
    expect(location.textContent).toBe('cell 0, line 22');
    linked.update({ names: { 'n:0': 'cell [7]' }, appliedFix: null, refusal: '' });
    expect(location.textContent).toBe('cell [7], line 22');
    expect(best(el).querySelector('.jp-InplaceMagic-diffTarget')!.textContent).toBe('cell [7]');
    linked.update({ names: { 'n:0': 'cell [9]' }, appliedFix: null, refusal: '' });
    expect(location.textContent).toBe('cell [9], line 22');
  });

  it('takes which fix is applied from the notebook: Undo after a reload, Apply refused when stale', () => {
    let detail: ILinkDetail | null = null;
    listen<ILinkDetail>(LINK_EVENT, e => {
      e.preventDefault();
      detail = e.detail;
    });
    const { el } = mount(state('skip_connection'));
    const linked = detail as unknown as ILinkDetail;
    linked.update({ names: {}, appliedFix: 0, refusal: '' });
    expect([button(best(el), 'Apply').disabled, button(best(el), 'Undo').disabled]).toEqual([true, false]);
    linked.update({ names: {}, appliedFix: null, refusal: 'cell [2] changed since the diagnosis.' });
    const apply = button(best(el), 'Apply');
    expect([apply.disabled, apply.title]).toEqual([true, 'cell [2] changed since the diagnosis.']);
    expect(best(el).querySelector('[role=status]')!.textContent).toBe(
      'cell [2] changed since the diagnosis.'
    );
  });
});

describe('Apply', () => {
  it('fires a bubbling event that selects the fix and describes nothing; the extension applies', async () => {
    const s = state('skip_connection');
    const { el, model } = mount(s);
    const details: IApplyDetail[] = [];
    listen<IApplyDetail>(APPLY_EVENT, e => {
      details.push(e.detail);
      e.preventDefault();
      setTimeout(() => e.detail.respond({ applied: true, message: 'Cell 0 changed; re-run cells 0–2.' }), 5);
    });
    click(best(el), 'Apply');
    const status = await settled(el);
    expect(details).toHaveLength(1);
    const [detail] = details;
    // the listener applies its own copy of the kernel's fix: the event carries no edits or code
    expect(detail).toEqual({
      protocol: PROTOCOL_VERSION,
      diagnosisId: s.id,
      fixIndex: 0,
      claim: expect.any(Function),
      respond: expect.any(Function)
    });
    expect(status.dataset.path).toBe('extension');
    // one line, in the extension's words, said once
    expect(status.textContent).toBe('Cell 0 changed; re-run cells 0–2.');
    expect(model.sent).toEqual([]);
    expect(button(best(el), 'Undo').disabled).toBe(false);
  });

  it('Undo goes back through the extension that applied the fix', async () => {
    const { el } = mount(state('leaf'));
    const events: string[] = [];
    for (const name of [APPLY_EVENT, UNDO_EVENT]) {
      listen<IApplyDetail>(name, e => {
        events.push(e.type);
        e.detail.claim();
        e.detail.respond({ applied: true, message: '' });
      });
    }
    const card = best(el);
    click(card, 'Apply');
    await settled(el);
    card.querySelector('.jp-InplaceMagic-status')!.removeAttribute('data-path');
    click(card, 'Undo');
    await settled(el);
    expect(events).toEqual([APPLY_EVENT, UNDO_EVENT]);
    expect(button(card, 'Apply').disabled).toBe(false);
  });

  it('an extension that refuses (cell edited since) is reported and nothing else is tried', async () => {
    const { el, model } = mount(state('leaf'));
    listen<IApplyDetail>(APPLY_EVENT, e => {
      e.preventDefault();
      e.detail.respond({ applied: false, message: 'cell 2 changed since the diagnosis' });
    });
    click(best(el), 'Apply');
    const status = await settled(el);
    expect([status.textContent, status.dataset.applied]).toEqual([
      'cell 2 changed since the diagnosis',
      'false'
    ]);
    expect(model.sent).toEqual([]);
  });

  it('falls back to the kernel when nobody claims the event, and shows the code to copy', async () => {
    const s = state('skip_connection');
    const kernel = (r: IApplyRequest): IOutcome => ({
      type: r.type,
      fixIndex: r.fixIndex,
      path: 'copy',
      applied: false,
      message: 'copy the fixed cell 0 below',
      copy: [{ label: 'cell 0', text: s.fixes[r.fixIndex].cells['0'] }],
      requestId: r.requestId
    });
    const { el, model } = mount(s, kernel);
    click(best(el), 'Apply');
    const status = await settled(el);
    expect(model.sent).toEqual([
      { type: 'apply', protocol: PROTOCOL_VERSION, diagnosisId: s.id, fixIndex: 0, requestId: `${s.id}:1` }
    ]);
    expect(status.dataset.path).toBe('copy');
    expect(status.textContent).toBe('copy the fixed cell 0 below');
    expect(el.querySelector('.jp-InplaceMagic-copyText')!.textContent).toBe(s.fixes[0].cells['0']);
  });

  it('says so when neither the extension nor the kernel answers', async () => {
    const { el } = mount(state('view'));
    click(best(el), 'Apply');
    const status = await settled(el);
    expect(status.dataset.path).toBe('none');
    expect(status.textContent).toContain('The kernel did not answer');
  });
});

describe('backticked code in messages', () => {
  it('becomes <code> text, and an unpaired backtick stays', async () => {
    const { rich } = await import('../dom');
    const el = document.createElement('p');
    el.append(...(rich('`x += y` wrote `<b>` and a ` tick') as (Node | string)[]));
    expect([...el.querySelectorAll('code')].map(c => c.textContent)).toEqual(['x += y', '<b>']);
    expect(el.textContent).toBe('x += y wrote <b> and a ` tick');
    expect(el.querySelector('b')).toBeNull();
  });
});
