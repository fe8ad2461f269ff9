import { afterEach, describe, expect, it } from 'vitest';

import type { ITimeouts } from '../apply';
import { renderPanel } from '../panel';
import { APPLY_EVENT, REVEAL_EVENT, UNDO_EVENT, type IApplyDetail } from '../events';
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

function click(el: Element, text: string): void {
  const button = q(el, 'button').find(b => b.textContent === text) as HTMLButtonElement | undefined;
  if (!button) {
    throw new Error(`no button ${text}`);
  }
  button.click();
}

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

  it('skip connection: the broken skip edge is highlighted and labelled for screen readers', () => {
    const { el } = mount(state('skip_connection'));
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

  it('shows more and less of the neighbourhood', () => {
    const { el } = mount(state('skip_connection'));
    const count = (): number => q(el, '.jp-InplaceMagic-node').length;
    const start = count();
    click(el, 'Show more');
    expect(count()).toBeGreaterThan(start);
    expect(q(el, '.jp-InplaceMagic-node--caller').length).toBeGreaterThan(0);
    click(el, 'Show less');
    click(el, 'Show less');
    expect(
      q(el, '.jp-InplaceMagic-node').every(n => !n.classList.contains('jp-InplaceMagic-node--step'))
    ).toBe(true);
  });

  it('zooms and pans from the keyboard', () => {
    const { el } = mount(state('leaf'));
    const svg = el.querySelector('svg')!;
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
    const first = el.querySelector('.jp-InplaceMagic-fixCard')!;
    const del = q(first, '.jp-InplaceMagic-diffLine--del').map(l => l.textContent);
    const add = q(first, '.jp-InplaceMagic-diffLine--add').map(l => l.textContent);
    expect(del).toEqual(['removed: -         x += residual']);
    expect(add).toEqual(['added: +         x = x + residual']);
    expect(q(first, '.jp-InplaceMagic-diffLine--ctx').length).toBeGreaterThan(0);
  });

  it('labels fixes: verified and gradient-preserving, or changing the training semantics', () => {
    const labels = (name: FixtureName): string[] => {
      const { el } = mount(state(name));
      const card = el.querySelector('.jp-InplaceMagic-fixCard')!;
      return q(card, '.jp-InplaceMagic-label').map(l => l.textContent!);
    };
    expect(labels('skip_connection')).toEqual(['verified', 'gradient-preserving']);
    expect(labels('optimizer_step')).toEqual(['verified', 'changes the training semantics']);
    // the words are the kernel's: a state in other words shows those
    const s = state('skip_connection');
    s.fixes[0].labels = [{ tag: 'verified', text: 'vérifié' }];
    const { el } = mount(s);
    const label = el.querySelector('.jp-InplaceMagic-fixCard .jp-InplaceMagic-label')!;
    expect([label.textContent, label.classList.contains('jp-InplaceMagic-label--verified')]).toEqual([
      'vérifié',
      true
    ]);
  });

  it('alternatives are folded under the first fix', () => {
    const { el } = mount(state('skip_connection'));
    const cards = q(el, 'details.jp-InplaceMagic-fixCard') as HTMLDetailsElement[];
    expect(cards.length).toBe(state('skip_connection').fixes.length);
    expect(cards.map(c => c.open)).toEqual([true, ...cards.slice(1).map(() => false)]);
    expect(cards[1].querySelector('summary')!.textContent).toContain('Alternative: ');
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
    const { el } = mount(s);
    expect(el.querySelectorAll('script, img').length).toBe(0);
    expect(el.querySelector('.jp-InplaceMagic-headline')!.textContent).toBe(evil);
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
    click(el.querySelector('.jp-InplaceMagic-fixCard')!, 'Apply');
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
    expect(status.textContent).toContain('Applied by the JupyterLab extension. Cell 0 changed');
    expect(model.sent).toEqual([]);
    const undo = q(el.querySelector('.jp-InplaceMagic-fixCard')!, 'button').find(
      b => b.textContent === 'Undo'
    ) as HTMLButtonElement;
    expect(undo.disabled).toBe(false);
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
    const card = el.querySelector('.jp-InplaceMagic-fixCard')!;
    click(card, 'Apply');
    await settled(el);
    card.querySelector('.jp-InplaceMagic-status')!.removeAttribute('data-path');
    click(card, 'Undo');
    const status = await settled(el);
    expect(events).toEqual([APPLY_EVENT, UNDO_EVENT]);
    expect(status.textContent).toContain('Undone by the JupyterLab extension');
  });

  it('an extension that refuses (cell edited since) is reported and nothing else is tried', async () => {
    const { el, model } = mount(state('leaf'));
    listen<IApplyDetail>(APPLY_EVENT, e => {
      e.preventDefault();
      e.detail.respond({ applied: false, message: 'cell 2 changed since the diagnosis' });
    });
    click(el.querySelector('.jp-InplaceMagic-fixCard')!, 'Apply');
    const status = await settled(el);
    expect(status.textContent).toContain(
      'The JupyterLab extension refused: cell 2 changed since the diagnosis'
    );
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
    click(el.querySelector('.jp-InplaceMagic-fixCard')!, 'Apply');
    const status = await settled(el);
    expect(model.sent).toEqual([
      { type: 'apply', protocol: PROTOCOL_VERSION, diagnosisId: s.id, fixIndex: 0, requestId: `${s.id}:1` }
    ]);
    expect(status.dataset.path).toBe('copy');
    expect(status.textContent).toContain('Copy the fixed code');
    expect(el.querySelector('.jp-InplaceMagic-copyText')!.textContent).toBe(s.fixes[0].cells['0']);
  });

  it('says so when neither the extension nor the kernel answers', async () => {
    const { el } = mount(state('view'));
    click(el.querySelector('.jp-InplaceMagic-fixCard')!, 'Apply');
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
