/**
 * Line decorations in a cell's CodeMirror editor: the writer and saver lines of the current
 * diagnoses, and a brief mark on the line a click revealed.
 */
import { RangeSetBuilder, StateEffect, StateField } from '@codemirror/state';
import { Decoration, type DecorationSet, EditorView } from '@codemirror/view';

export type LineRole = 'writer' | 'saver' | 'reveal';

export interface ILineMark {
  /** 1-based, as the kernel reports lines. */
  line: number;
  role: LineRole;
  title: string;
}

const CLASSES: Record<LineRole, string> = {
  writer: 'jp-InplaceMagic-writerLine',
  saver: 'jp-InplaceMagic-saverLine',
  reveal: 'jp-InplaceMagic-revealLine'
};

const setMarks = StateEffect.define<ILineMark[]>();

function decorations(view: { state: EditorView['state'] }, marks: ILineMark[]): DecorationSet {
  const doc = view.state.doc;
  const byLine = new Map<number, ILineMark[]>();
  for (const mark of marks) {
    if (mark.line >= 1 && mark.line <= doc.lines) {
      byLine.set(mark.line, [...(byLine.get(mark.line) ?? []), mark]);
    }
  }
  const builder = new RangeSetBuilder<Decoration>();
  for (const line of [...byLine.keys()].sort((a, b) => a - b)) {
    const here = byLine.get(line) ?? [];
    const attributes = { title: here.map(m => m.title).join('\n') };
    const classes = [...new Set(here.map(m => CLASSES[m.role]))].join(' ');
    builder.add(doc.line(line).from, doc.line(line).from, Decoration.line({ class: classes, attributes }));
  }
  return builder.finish();
}

const marksField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(value, transaction) {
    let next = value.map(transaction.changes);
    for (const effect of transaction.effects) {
      if (effect.is(setMarks)) {
        next = decorations(transaction, effect.value);
      }
    }
    return next;
  },
  provide: field => EditorView.decorations.from(field)
});

/** Show exactly `marks` in `view` (an empty list removes ours). */
export function setLineMarks(view: EditorView, marks: ILineMark[]): void {
  const installed = view.state.field(marksField, false) !== undefined;
  if (!installed && !marks.length) {
    return;
  }
  if (!installed) {
    // a field added by a transaction does not see that transaction's effects
    view.dispatch({ effects: StateEffect.appendConfig.of(marksField) });
  }
  view.dispatch({ effects: setMarks.of(marks) });
}
