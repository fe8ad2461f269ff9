import { EditorState } from '@codemirror/state';
import { EditorView } from '@codemirror/view';
import { describe, expect, it } from 'vitest';

import { setLineMarks } from '../highlight';

describe('line marks', () => {
  it('decorates the writer and saver lines, and removes them', () => {
    const view = new EditorView({ state: EditorState.create({ doc: 'a = 1\nb = a\nb += 1\n' }) });
    setLineMarks(view, [
      { line: 3, role: 'writer', title: 'Written in place (add_)' },
      { line: 2, role: 'saver', title: 'Saved for backward' },
      { line: 99, role: 'saver', title: 'out of range' }
    ]);
    const marked = (cls: string): string[] =>
      [...view.dom.querySelectorAll(`.${cls}`)].map(n => n.textContent ?? '');
    expect(marked('jp-InplaceMagic-writerLine')).toEqual(['b += 1']);
    expect(marked('jp-InplaceMagic-saverLine')).toEqual(['b = a']);
    setLineMarks(view, []);
    expect(marked('jp-InplaceMagic-writerLine')).toEqual([]);
  });
});
