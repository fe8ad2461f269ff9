import { Signal } from '@lumino/signaling';
import { describe, expect, it, vi } from 'vitest';

import { DiagnosisList } from '../model';
import type { ISidebarSource } from '../session';
import { DiagnosisSidebar } from '../sidebar';
import { state } from '../../panel/__tests__/fixtures';
import { trans } from './helpers';

function source(
  names: Record<number, string> = {}
): ISidebarSource & { list: DiagnosisList; renamed: Signal<ISidebarSource, void> } {
  const notebook = {
    list: new DiagnosisList(),
    title: 'train.ipynb',
    apply: vi.fn(async () => ({ applied: true, message: 'Applied.' })),
    undo: vi.fn(async () => ({ applied: true, message: 'Restored.' })),
    dismiss: vi.fn((id: string) => void notebook.list.dismiss(id)),
    reveal: vi.fn(async () => undefined),
    text: (parts: { text: string }[]) => parts.map(p => p.text).join(''),
    name: (ref: { cell?: number | null }) =>
      typeof ref.cell === 'number' ? (names[ref.cell] ?? null) : null,
    renamed: null as unknown as Signal<ISidebarSource, void>
  };
  notebook.renamed = new Signal<ISidebarSource, void>(notebook);
  return notebook;
}

const buttons = (sidebar: DiagnosisSidebar): string[] =>
  [...sidebar.node.querySelectorAll('button')].map(b => b.textContent ?? '');

describe('the sidebar', () => {
  it('says what to do when there is nothing to show', () => {
    const sidebar = new DiagnosisSidebar(trans);
    expect(sidebar.node.textContent).toContain('Open a notebook');
    sidebar.setSource(source());
    expect(sidebar.node.textContent).toContain('No diagnoses for this notebook yet.');
  });

  it('lists kind, headline, writer and saver locations, status, verification and the fix', async () => {
    const sidebar = new DiagnosisSidebar(trans);
    const notebook = source();
    sidebar.setSource(notebook);
    const s = state('skip_connection');
    notebook.list.add(s, true);
    const entry = sidebar.node.querySelector('li')!;
    expect(entry.dataset.status).toBe('new');
    expect(entry.querySelector('.jp-InplaceMagic-sidebarHeadline')!.textContent).toBe(
      s.headline.replace(/`/g, '')
    );
    expect(entry.querySelector('.jp-InplaceMagic-sidebarVerification')!.textContent).toBe(
      s.fixes[0].verification.label
    );
    expect(buttons(sidebar)).toEqual(['×', 'cell 0, line 22', 'cell 0, line 21', 'Apply fix']);
    (sidebar.node.querySelector('.jp-InplaceMagic-sidebarLocation') as HTMLButtonElement).click();
    expect(notebook.reveal).toHaveBeenCalledWith(s.writer!.where);
    (sidebar.node.querySelector('.jp-InplaceMagic-apply') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(notebook.apply).toHaveBeenCalledWith(s.id, 0));
  });

  it('offers each fix with its whole title and its verification; a choice keeps the keyboard on it', async () => {
    const sidebar = new DiagnosisSidebar(trans);
    document.body.append(sidebar.node);
    const notebook = source();
    sidebar.setSource(notebook);
    const s = state('skip_connection');
    notebook.list.add(s, true);
    const group = sidebar.node.querySelector('[role=radiogroup]')!;
    expect(group.getAttribute('aria-label')).toBe('Fix to apply');
    const choices = [...group.querySelectorAll('label')];
    // the titles are the kernel's, their code as code: no backtick is left in what is read
    expect(choices.map(c => c.querySelector('.jp-InplaceMagic-fixChoiceTitle')!.textContent)).toEqual(
      s.fixes.map(f => f.title.replace(/`/g, ''))
    );
    expect(choices[1].querySelector('code')!.textContent).toBe('nn.ELU()');
    expect(choices.map(c => c.querySelector('.jp-InplaceMagic-sidebarVerification')!.textContent)).toEqual(
      s.fixes.map(f => f.verification.label)
    );
    const radios = (): HTMLInputElement[] => [...sidebar.node.querySelectorAll<HTMLInputElement>('input')];
    expect(radios().map(r => r.checked)).toEqual([true, false, false, false]);
    radios()[2].focus();
    radios()[2].click();
    expect(notebook.list.find(s.id)?.chosenFix).toBe(2);
    expect(radios().map(r => r.checked)).toEqual([false, false, true, false]);
    expect(document.activeElement).toBe(radios()[2]);
    (sidebar.node.querySelector('.jp-InplaceMagic-apply') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(notebook.apply).toHaveBeenCalledWith(s.id, 2));
    sidebar.node.remove();
  });

  it('writes the empty state’s code as code', () => {
    const sidebar = new DiagnosisSidebar(trans);
    sidebar.setSource(source());
    expect(sidebar.node.textContent).not.toContain('`');
    expect([...sidebar.node.querySelectorAll('code')].map(c => c.textContent)).toContain('%%gradcheck');
  });

  it('names the cells as the notebook shows them now, and redraws when they are renamed', () => {
    const sidebar = new DiagnosisSidebar(trans);
    const names: Record<number, string> = { 0: 'cell [5]' };
    const notebook = source(names);
    sidebar.setSource(notebook);
    notebook.list.add(state('skip_connection'), true);
    expect(buttons(sidebar)).toContain('cell [5], line 22');
    names[0] = 'cell [8]';
    notebook.renamed.emit();
    expect(buttons(sidebar)).toContain('cell [8], line 22');
  });

  it('offers Undo for an applied fix, nothing to apply for a stale one, and shows problems', () => {
    const sidebar = new DiagnosisSidebar(trans);
    const notebook = source();
    sidebar.setSource(notebook);
    const s = state('optimizer_step');
    notebook.list.add(s, true);
    notebook.list.recheck(() => ({ status: 'applied', reason: '', appliedFix: 0 }));
    notebook.list.setMessage(s.id, 'Applied to `cell [3]`.');
    expect(buttons(sidebar)).toContain('Undo');
    expect(sidebar.node.querySelector('[role=status]')?.textContent).toBe('Applied to cell [3].');
    notebook.list.recheck(() => ({ status: 'stale', reason: 'The kernel restarted.', appliedFix: null }));
    const apply = sidebar.node.querySelector('.jp-InplaceMagic-apply') as HTMLButtonElement;
    expect([sidebar.node.querySelector('li')?.dataset.status, apply.disabled, apply.title]).toEqual([
      'stale',
      true,
      'The kernel restarted.'
    ]);
    notebook.list.problem = 'The kernel speaks protocol 2';
    expect(sidebar.node.querySelector('[role=alert]')?.textContent).toBe('The kernel speaks protocol 2');
  });

  it('waits for the kernel while it verifies the fix', () => {
    const sidebar = new DiagnosisSidebar(trans);
    const notebook = source();
    sidebar.setSource(notebook);
    const s = state('leaf');
    s.fixes[0].verification = {
      status: 'verifying',
      label: 'verifying…',
      detail: 'The kernel is running it.'
    };
    s.fixes[0].can_apply = false;
    notebook.list.add(s, true);
    const apply = sidebar.node.querySelector('.jp-InplaceMagic-apply') as HTMLButtonElement;
    expect([apply.disabled, apply.title]).toEqual([true, 'The kernel is running it.']);
    expect(
      sidebar.node.querySelector('.jp-InplaceMagic-sidebarVerification .jp-InplaceMagic-spinner')
    ).not.toBeNull();
  });

  it('dismisses an entry', () => {
    const sidebar = new DiagnosisSidebar(trans);
    const notebook = source();
    sidebar.setSource(notebook);
    const s = state('leaf');
    notebook.list.add(s, true);
    (sidebar.node.querySelector('.jp-InplaceMagic-dismiss') as HTMLButtonElement).click();
    expect(notebook.dismiss).toHaveBeenCalledWith(s.id);
    expect(sidebar.node.querySelectorAll('li')).toHaveLength(0);
  });

  it('follows the active notebook', () => {
    const sidebar = new DiagnosisSidebar(trans);
    const first = source();
    const second = source();
    first.list.add(state('leaf'), true);
    sidebar.setSource(first);
    expect(sidebar.node.querySelectorAll('li')).toHaveLength(1);
    sidebar.setSource(second);
    expect(sidebar.node.querySelectorAll('li')).toHaveLength(0);
    first.list.add(state('view'), true);
    expect(sidebar.node.querySelectorAll('li')).toHaveLength(0);
  });
});
