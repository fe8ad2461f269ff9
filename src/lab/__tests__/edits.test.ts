import { describe, expect, it } from 'vitest';

import { applyChanges, applyLineEdits, minimalEdit, planFix, undoFix } from '../edits';
import type { IEditView, IPanelState } from '../../panel/wire';
import vectors from '../../../tests/fixtures/widget/apply/line_edits.json';
import { state } from '../../panel/__tests__/fixtures';
import { MemoryText, resolver, trans } from './helpers';

function skip(): { s: IPanelState; before: string; after: string } {
  const s = state('skip_connection');
  s.cell_ids = { '0': 'model-cell' };
  return { s, before: s.fixes[0].before['0'], after: s.fixes[0].cells['0'] };
}

async function applyFix(
  s: IPanelState,
  cells: Record<string, MemoryText>,
  files: Record<string, MemoryText> = {}
) {
  const plan = await planFix(s, 0, resolver(cells, files), trans);
  if (plan.ok) {
    applyChanges(plan.changes);
  }
  return plan;
}

describe('applying a fix', () => {
  it('rewrites the cell the kernel ran into the fixed cell, as one undo step', async () => {
    const { s, before, after } = skip();
    const cell = new MemoryText('cell 0', before);
    const plan = await applyFix(s, { 'model-cell': cell });
    expect(plan.ok).toBe(true);
    expect(cell.text).toBe(after);
    expect(cell.text).toContain('x = x + residual');
    expect([cell.edits, cell.checkpoints]).toEqual([1, 2]);
  });

  it('refuses, changing nothing, when the cell was edited since the diagnosis', async () => {
    const { s, before } = skip();
    const typed = before.replace('return x\n', 'return x  # mine\n');
    const cell = new MemoryText('cell 0', typed);
    const plan = await applyFix(s, { 'model-cell': cell });
    expect(plan).toEqual({
      ok: false,
      message: expect.stringMatching(/^cell 0 changed since the diagnosis/)
    });
    expect(cell.text).toBe(typed);
    expect(cell.edits).toBe(0);
  });

  it('refuses when the cell no longer exists', async () => {
    const { s } = skip();
    const plan = await applyFix(s, {});
    expect(plan).toEqual({ ok: false, message: 'cell 0 no longer exists' });
  });

  it('ignores whitespace the kernel dropped at the end of a cell, and keeps it', async () => {
    const { s, before, after } = skip();
    const cell = new MemoryText('cell 0', before.trimEnd() + '\n\n');
    expect((await applyFix(s, { 'model-cell': cell })).ok).toBe(true);
    expect(cell.text).toBe(after.trimEnd() + '\n\n');
  });

  it('checks each edited line when the old cell text is unknown', async () => {
    const { s, before } = skip();
    s.fixes[0].before = {};
    s.fixes[0].cells = {};
    const cell = new MemoryText('cell 0', before);
    expect((await applyFix(s, { 'model-cell': cell })).ok).toBe(true);
    expect(cell.text.split('\n')[21]).toBe('        x = x + residual');
    const moved = new MemoryText('cell 0', '# a new first line\n' + before);
    const plan = await applyFix(s, { 'model-cell': moved });
    expect(plan).toEqual({
      ok: false,
      message: expect.stringContaining('line 22 is no longer `x += residual`')
    });
  });

  it('edits all targets or none', async () => {
    const { s, before } = skip();
    s.fixes[0].edits.push({ file: 'blocks.py', line: 1, old: 'a = 1', new: 'a = 2' });
    const cell = new MemoryText('cell 0', before);
    const file = new MemoryText('blocks.py', 'a = 3\n');
    const plan = await applyFix(s, { 'model-cell': cell }, { 'blocks.py': file });
    expect(plan.ok).toBe(false);
    expect([cell.text, file.text]).toEqual([before, 'a = 3\n']);
    file.text = 'a = 1\n';
    expect((await applyFix(s, { 'model-cell': cell }, { 'blocks.py': file })).ok).toBe(true);
    expect(file.text).toBe('a = 2\n');
  });

  it('says there is no such fix', async () => {
    const { s } = skip();
    expect(await planFix(s, 9, resolver({}), trans)).toEqual({
      ok: false,
      message: 'This diagnosis has no fix 9.'
    });
  });
});

describe('undoing a fix', () => {
  it('restores the exact previous source', async () => {
    const { s, before } = skip();
    const original = before + '\n   \n';
    const cell = new MemoryText('cell 0', original);
    const plan = await applyFix(s, { 'model-cell': cell });
    if (!plan.ok) {
      throw new Error(plan.message);
    }
    const outcome = undoFix({ diagnosisId: s.id, fixIndex: 0, changes: plan.changes }, trans);
    expect(outcome).toEqual({ applied: true, message: 'Restored cell 0 as it was before the fix.' });
    expect(cell.text).toBe(original);
  });

  it('refuses when the cell was edited after the fix', async () => {
    const { s, before } = skip();
    const cell = new MemoryText('cell 0', before);
    const plan = await applyFix(s, { 'model-cell': cell });
    if (!plan.ok) {
      throw new Error(plan.message);
    }
    cell.text += '# typed after the fix\n';
    const kept = cell.text;
    const outcome = undoFix({ diagnosisId: s.id, fixIndex: 0, changes: plan.changes }, trans);
    expect(outcome.applied).toBe(false);
    expect(outcome.message).toMatch(/changed since the fix was applied; nothing was undone/);
    expect(cell.text).toBe(kept);
  });
});

describe('text helpers', () => {
  it('replaces only what changed', () => {
    expect(minimalEdit('x += r\n', 'x = x + r\n')).toEqual({ start: 2, end: 4, text: '= x +' });
    expect(minimalEdit('same', 'same')).toEqual({ start: 4, end: 4, text: '' });
    expect(minimalEdit('', 'new')).toEqual({ start: 0, end: 0, text: 'new' });
  });

  // the kernel's half (inplace_magic/panel/apply.py) runs the same vectors: tests/test_protocol_generated.py
  it.each(vectors.vectors.map(v => [v.name, v] as const))('line edits: %s', (_, vector) => {
    const result = applyLineEdits(vector.text, vector.edits as IEditView[]);
    expect(result).toEqual('result' in vector ? { text: vector.result } : { mismatch: vector.mismatch });
  });
});
