import { describe, expect, it, vi } from 'vitest';

import { DiagnosisList } from '../model';
import type { ISidebarSource } from '../session';
import { DiagnosisSidebar } from '../sidebar';
import { state } from '../../panel/__tests__/fixtures';
import { trans } from './helpers';

function source(): ISidebarSource & { list: DiagnosisList } {
  return {
    list: new DiagnosisList(),
    title: 'train.ipynb',
    apply: vi.fn(async () => ({ applied: true, message: 'Applied.' })),
    undo: vi.fn(async () => ({ applied: true, message: 'Restored.' })),
    reveal: vi.fn(async () => undefined)
  };
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

  it('lists kind, headline, writer and saver locations, status and the fix', async () => {
    const sidebar = new DiagnosisSidebar(trans);
    const notebook = source();
    sidebar.setSource(notebook);
    const s = state('skip_connection');
    notebook.list.add(s, trans);
    const entry = sidebar.node.querySelector('li')!;
    expect(entry.dataset.status).toBe('new');
    expect(entry.textContent).toContain(s.headline);
    expect(buttons(sidebar)).toEqual(['cell 0, line 22', 'cell 0, line 21', 'Apply fix']);
    (sidebar.node.querySelector('.jp-InplaceMagic-sidebarLocation') as HTMLButtonElement).click();
    expect(notebook.reveal).toHaveBeenCalledWith(s.writer!.where);
    (sidebar.node.querySelector('.jp-InplaceMagic-apply') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(notebook.apply).toHaveBeenCalledWith(s.id, 0));
  });

  it('offers Undo for an applied fix, nothing to apply for a stale one, and shows problems', () => {
    const sidebar = new DiagnosisSidebar(trans);
    const notebook = source();
    sidebar.setSource(notebook);
    const s = state('optimizer_step');
    notebook.list.add(s, trans);
    notebook.list.markApplied(s.id, 0, 'Applied it.');
    expect(buttons(sidebar)).toContain('Undo');
    expect(sidebar.node.querySelector('[role=status]')?.textContent).toBe('Applied it.');
    notebook.list.markUndone(s.id, 'Restored.', trans);
    notebook.list.kernelRestarted(trans);
    const apply = sidebar.node.querySelector('.jp-InplaceMagic-apply') as HTMLButtonElement;
    expect([sidebar.node.querySelector('li')?.dataset.status, apply.disabled]).toEqual(['stale', true]);
    notebook.list.problem = 'The kernel speaks protocol 2';
    expect(sidebar.node.querySelector('[role=alert]')?.textContent).toBe('The kernel speaks protocol 2');
  });

  it('follows the active notebook', () => {
    const sidebar = new DiagnosisSidebar(trans);
    const first = source();
    const second = source();
    first.list.add(state('leaf'), trans);
    sidebar.setSource(first);
    expect(sidebar.node.querySelectorAll('li')).toHaveLength(1);
    sidebar.setSource(second);
    expect(sidebar.node.querySelectorAll('li')).toHaveLength(0);
    first.list.add(state('view'), trans);
    expect(sidebar.node.querySelectorAll('li')).toHaveLength(0);
  });
});
