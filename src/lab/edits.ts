/**
 * Applying and undoing a fix, as pure logic over text targets (a notebook cell's shared model, a
 * `.py` document's): resolve every target, refuse when one changed since the diagnosis or is gone,
 * then edit all of them. Nothing throws; every path returns an outcome the user can read. The
 * line-edit step is the kernel's too (inplace_magic/panel/apply.py): both run the vectors of
 * tests/fixtures/widget/apply/line_edits.json.
 */
import type { IExtensionOutcome } from '../panel/events';
import type { IEditView, IFixView, IPanelState } from '../panel/wire';
import type { ITrans } from './trans';

/** What a target (cell or file) must still contain for the fix to apply. */
export interface IExpectedTarget {
  cell: number | null;
  cellId: string | null;
  file: string | null;
  /** The target as the kernel named it ("cell [4]", a file's path). */
  name: string;
  /** The full text at diagnosis time, when the kernel knew it. */
  oldSource: string | null;
  /** The full fixed text, when the fix gives it. */
  newSource: string | null;
}

/** The targets a fix edits, each with what it must still contain. */
export function expectedTargets(state: IPanelState, fix: IFixView): IExpectedTarget[] {
  const targets = new Map<string, IExpectedTarget>();
  const target = (cell: number | null, file: string | null): void => {
    const key = cell !== null ? `cell:${cell}` : `file:${file}`;
    if (!targets.has(key)) {
      const index = cell !== null ? String(cell) : '';
      const diff = fix.diffs.find(d => (cell !== null ? d.cell === cell : d.file === file));
      targets.set(key, {
        cell,
        cellId: cell !== null ? (state.cell_ids[index] ?? null) : null,
        file,
        name: diff?.label ?? (cell !== null ? `cell ${cell}` : (file ?? '?')),
        oldSource: cell !== null ? (fix.before[index] ?? null) : null,
        newSource: cell !== null ? (fix.cells[index] ?? null) : null
      });
    }
  };
  for (const edit of fix.edits) {
    target(edit.cell ?? null, edit.cell === undefined ? (edit.file ?? null) : null);
  }
  for (const key of Object.keys(fix.cells)) {
    target(Number(key), null);
  }
  return [...targets.values()];
}

/** Text that can be read and edited in place (edits land in its undo history). */
export interface ITextTarget {
  readonly label: string;
  /** The notebook index of a cell target (null for a file). */
  readonly index?: number;
  getSource(): string;
  updateSource(start: number, end: number, text: string): void;
  /** Start a new undo step, so the fix is one step of the editor's undo. */
  checkpoint?(): void;
}

/** Finds the live text of a target: a cell by id (or by its old source), a file by path. */
export interface ITargetResolver {
  cell(target: IExpectedTarget): ITextTarget | string;
  file(path: string): Promise<ITextTarget | string>;
}

export interface IChange {
  target: ITextTarget;
  before: string;
  after: string;
}

export type Plan = { ok: true; changes: IChange[] } | { ok: false; message: string };

/** What was applied, so Undo can restore it exactly. */
export interface IAppliedFix {
  diagnosisId: string;
  fixIndex: number;
  changes: IChange[];
}

/** Equal but for whitespace at the very end (the kernel's history drops trailing newlines). */
export function sameSource(a: string, b: string): boolean {
  return a.trimEnd() === b.trimEnd();
}

/** `text` with each edit's old lines replaced by its new ones, or why an old line does not match. */
export function applyLineEdits(text: string, edits: IEditView[]): { text: string } | { mismatch: string } {
  const lines = text.split('\n');
  for (const edit of [...edits].sort((a, b) => b.line - a.line)) {
    const start = edit.line - 1;
    const old = edit.old ? edit.old.split('\n') : [];
    const replacement = edit.new ? edit.new.split('\n') : [];
    const found = lines.slice(start, start + old.length);
    if (start < 0 || start > lines.length || found.join('\n') !== old.join('\n')) {
      return { mismatch: `line ${edit.line} is no longer \`${edit.old.trim()}\`` };
    }
    lines.splice(start, old.length, ...replacement);
  }
  return { text: lines.join('\n') };
}

/** The smallest single replacement that turns `before` into `after` (keeps cursors and marks). */
export function minimalEdit(before: string, after: string): { start: number; end: number; text: string } {
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) {
    start += 1;
  }
  let tail = 0;
  while (
    tail < before.length - start &&
    tail < after.length - start &&
    before[before.length - 1 - tail] === after[after.length - 1 - tail]
  ) {
    tail += 1;
  }
  return { start, end: before.length - tail, text: after.slice(start, after.length - tail) };
}

function editsOf(fix: IFixView, target: IExpectedTarget): IEditView[] {
  return fix.edits.filter(e =>
    target.cell !== null ? e.cell === target.cell : e.cell === undefined && e.file === target.file
  );
}

/** The fixed text of one target, or why it cannot be fixed. */
function fixedText(
  current: string,
  target: IExpectedTarget,
  edits: IEditView[],
  label: string,
  trans: ITrans
): { text: string } | { refusal: string } {
  const changed = (why: string): { refusal: string } => ({
    refusal: trans.__(
      '%1 changed since the diagnosis (%2); nothing was changed. Re-run the cell to diagnose it again.',
      label,
      why
    )
  });
  if (target.oldSource !== null) {
    if (!sameSource(current, target.oldSource)) {
      return changed(trans.__('its text is not what the kernel ran'));
    }
    if (target.newSource !== null) {
      const kept = current.slice(current.trimEnd().length);
      return { text: target.newSource.trimEnd() + kept };
    }
  }
  if (!edits.length) {
    return { refusal: trans.__('%1 cannot be checked against the diagnosis; nothing was changed.', label) };
  }
  const result = applyLineEdits(current, edits);
  return 'text' in result ? result : changed(result.mismatch);
}

/** Resolve and check every target of fix `fixIndex` of `state`; edit nothing. */
export async function planFix(
  state: IPanelState,
  fixIndex: number,
  resolver: ITargetResolver,
  trans: ITrans
): Promise<Plan> {
  const fix = state.fixes.find(f => f.index === fixIndex);
  if (!fix) {
    return { ok: false, message: trans.__('This diagnosis has no fix %1.', fixIndex) };
  }
  const changes: IChange[] = [];
  for (const target of expectedTargets(state, fix)) {
    const resolved = target.cell !== null ? resolver.cell(target) : await resolver.file(target.file ?? '');
    if (typeof resolved === 'string') {
      return { ok: false, message: resolved };
    }
    const before = resolved.getSource();
    const fixed = fixedText(before, target, editsOf(fix, target), resolved.label, trans);
    if ('refusal' in fixed) {
      return { ok: false, message: fixed.refusal };
    }
    changes.push({ target: resolved, before, after: fixed.text });
  }
  if (!changes.length) {
    return { ok: false, message: trans.__('This fix edits nothing.') };
  }
  return { ok: true, changes };
}

function replace(target: ITextTarget, before: string, after: string): void {
  const edit = minimalEdit(before, after);
  target.checkpoint?.();
  target.updateSource(edit.start, edit.end, edit.text);
  target.checkpoint?.();
}

/** Edit every target of a checked plan. */
export function applyChanges(changes: IChange[]): void {
  for (const change of changes) {
    replace(change.target, change.before, change.after);
  }
}

/** Restore exactly what `applied` replaced, unless a target was edited since (then change nothing). */
export function undoFix(applied: IAppliedFix, trans: ITrans): IExtensionOutcome {
  for (const change of applied.changes) {
    if (change.target.getSource() !== change.after) {
      return {
        applied: false,
        message: trans.__(
          "%1 changed since the fix was applied; nothing was undone. Use the editor's undo (Ctrl+Z) in it instead.",
          change.target.label
        )
      };
    }
  }
  for (const change of applied.changes) {
    replace(change.target, change.after, change.before);
  }
  const labels = applied.changes.map(c => c.target.label).join(', ');
  return { applied: true, message: trans.__('Restored %1 as it was before the fix.', labels) };
}
