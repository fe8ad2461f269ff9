/**
 * A fix shown as a cell diff in the cell's own editor, with Accept / Reject (the jupyterlab-diff
 * convention): after Apply the added lines are marked (they flash once), the removed ones are shown
 * struck through between them, and a bar over the cell names the fix. Accept keeps the change and
 * clears the marks; Reject undoes the fix. Any other edit of the cell (typing, the editor's undo)
 * ends the review: the cell's text is then the truth.
 */
import { RangeSetBuilder, StateEffect, StateField } from '@codemirror/state';
import { Decoration, type DecorationSet, EditorView, WidgetType } from '@codemirror/view';

export interface IReviewLabels {
  /** "Fix applied: …" */
  title: string;
  accept: string;
  reject: string;
  acceptHint: string;
  rejectHint: string;
}

export interface IReview {
  /** The cell's text before the fix; the editor holds the text after it. */
  before: string;
  labels: IReviewLabels;
  accept(): void;
  reject(): void;
}

/** Lines of `after` that are new, and runs of `before` lines removed before a line of `after`. */
export interface ILineDiff {
  added: number[];
  /** `at`: the 1-based line of `after` the removed lines stood before (`after`'s length + 1: at the end). */
  removed: { at: number; lines: string[] }[];
}

/** A line diff of two cell texts (longest common subsequence of lines). */
export function lineDiff(before: string, after: string): ILineDiff {
  const a = before.split('\n');
  const b = after.split('\n');
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const diff: ILineDiff = { added: [], removed: [] };
  let i = 0;
  let j = 0;
  let run: string[] = [];
  const flush = (): void => {
    if (run.length) {
      diff.removed.push({ at: j + 1, lines: run });
      run = [];
    }
  };
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      flush();
      i++;
      j++;
    } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      run.push(a[i]); // removed lines first, as a diff reads
      i++;
    } else {
      flush();
      diff.added.push(j + 1);
      j++;
    }
  }
  flush();
  return diff;
}

class RemovedLines extends WidgetType {
  constructor(private lines: string[]) {
    super();
  }

  eq(other: RemovedLines): boolean {
    return other.lines.join('\n') === this.lines.join('\n');
  }

  toDOM(): HTMLElement {
    const box = document.createElement('div');
    box.className = 'jp-InplaceMagic-removedLines';
    box.setAttribute('aria-label', 'Removed by the fix');
    for (const line of this.lines) {
      const row = document.createElement('div');
      row.className = 'jp-InplaceMagic-removedLine';
      row.textContent = line || ' ';
      box.append(row);
    }
    return box;
  }
}

class ReviewBar extends WidgetType {
  constructor(private review: IReview) {
    super();
  }

  eq(other: ReviewBar): boolean {
    return other.review === this.review;
  }

  toDOM(): HTMLElement {
    const { labels } = this.review;
    const bar = document.createElement('div');
    bar.className = 'jp-InplaceMagic-reviewBar';
    bar.setAttribute('role', 'group');
    bar.setAttribute('aria-label', labels.title);
    const title = document.createElement('span');
    title.className = 'jp-InplaceMagic-reviewTitle';
    title.textContent = labels.title;
    const button = (text: string, hint: string, className: string, action: () => void): HTMLButtonElement => {
      const node = document.createElement('button');
      node.type = 'button';
      node.className = `jp-InplaceMagic-reviewButton ${className} jp-mod-styled`;
      node.textContent = text;
      node.title = hint;
      node.addEventListener('mousedown', event => event.preventDefault()); // keep the editor's selection
      node.addEventListener('click', event => {
        event.preventDefault();
        action();
      });
      return node;
    };
    bar.append(
      title,
      button(labels.accept, labels.acceptHint, 'jp-mod-accept', () => this.review.accept()),
      button(labels.reject, labels.rejectHint, 'jp-mod-reject', () => this.review.reject())
    );
    return bar;
  }

  ignoreEvent(): boolean {
    return true;
  }
}

const setReview = StateEffect.define<IReview | null>();

function decorate(view: { state: EditorView['state'] }, review: IReview): DecorationSet {
  const doc = view.state.doc;
  const diff = lineDiff(review.before, doc.toString());
  const items: { from: number; deco: Decoration }[] = [
    { from: 0, deco: Decoration.widget({ widget: new ReviewBar(review), block: true, side: -2 }) }
  ];
  for (const line of diff.added) {
    if (line <= doc.lines) {
      items.push({
        from: doc.line(line).from,
        deco: Decoration.line({ class: 'jp-InplaceMagic-addedLine jp-InplaceMagic-flash' })
      });
    }
  }
  for (const run of diff.removed) {
    const at = run.at <= doc.lines ? doc.line(run.at).from : doc.length;
    const side = run.at <= doc.lines ? -1 : 1;
    items.push({
      from: at,
      deco: Decoration.widget({ widget: new RemovedLines(run.lines), block: true, side })
    });
  }
  items.sort((x, y) => x.from - y.from || x.deco.startSide - y.deco.startSide);
  const builder = new RangeSetBuilder<Decoration>();
  for (const item of items) {
    builder.add(item.from, item.from, item.deco);
  }
  return builder.finish();
}

const reviewField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(value, transaction) {
    for (const effect of transaction.effects) {
      if (effect.is(setReview)) {
        return effect.value ? decorate(transaction, effect.value) : Decoration.none;
      }
    }
    // an edit of the cell ends the review: its text is the truth now
    return transaction.docChanged ? Decoration.none : value;
  },
  provide: field => EditorView.decorations.from(field)
});

/** Show `review` in `view` (whose text is the fixed cell); null clears it. */
export function showReview(view: EditorView, review: IReview | null): void {
  if (view.state.field(reviewField, false) === undefined) {
    if (!review) {
      return;
    }
    view.dispatch({ effects: StateEffect.appendConfig.of(reviewField) });
  }
  view.dispatch({ effects: setReview.of(review) });
}

/** Whether `view` shows a review now. */
export function reviewing(view: EditorView): boolean {
  const field = view.state.field(reviewField, false);
  return field !== undefined && field.size > 0;
}
