import { EditorState } from '@codemirror/state';
import { EditorView } from '@codemirror/view';
import { describe, expect, it, vi } from 'vitest';

import { lineDiff, reviewing, showReview } from '../review';

const labels = { title: 'Fix applied', accept: 'Accept', reject: 'Reject', acceptHint: '', rejectHint: '' };

describe('a fix as a cell diff', () => {
  it('finds the added lines and the removed ones before them', () => {
    const before = 'a\nself.act = nn.ReLU(inplace=True)\nc';
    const after = 'a\nself.act = nn.ReLU()\nc';
    expect(lineDiff(before, after)).toEqual({
      added: [2],
      removed: [{ at: 2, lines: ['self.act = nn.ReLU(inplace=True)'] }]
    });
    expect(lineDiff('a\nb', 'a\nb\nc')).toEqual({ added: [3], removed: [] });
    expect(lineDiff('a\nb\nc', 'a\nc')).toEqual({ added: [], removed: [{ at: 2, lines: ['b'] }] });
    expect(lineDiff('a\nb', 'a')).toEqual({ added: [], removed: [{ at: 2, lines: ['b'] }] });
  });

  it('marks the change with Accept and Reject; an edit of the cell ends the review', () => {
    const view = new EditorView({
      state: EditorState.create({ doc: 'a\nx = x + r\nc' }),
      parent: document.body
    });
    const accept = vi.fn();
    const reject = vi.fn();
    showReview(view, { before: 'a\nx += r\nc', labels, accept, reject });
    expect(reviewing(view)).toBe(true);
    expect(view.dom.querySelector('.jp-InplaceMagic-addedLine')?.textContent).toBe('x = x + r');
    expect(view.dom.querySelector('.jp-InplaceMagic-removedLine')?.textContent).toBe('x += r');
    const [acceptButton, rejectButton] = [
      ...view.dom.querySelectorAll<HTMLButtonElement>('.jp-InplaceMagic-reviewButton')
    ];
    acceptButton.click();
    rejectButton.click();
    expect([accept.mock.calls.length, reject.mock.calls.length]).toEqual([1, 1]);
    view.dispatch({ changes: { from: 0, insert: '#' } });
    expect(reviewing(view)).toBe(false);
    view.destroy();
  });
});
