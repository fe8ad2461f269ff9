import { describe, expect, it } from 'vitest';

import { applyRefusal, DiagnosisList, issuedFix } from '../model';
import type { IPanelState } from '../../panel/wire';
import { state } from '../../panel/__tests__/fixtures';
import { trans } from './helpers';

/** A diagnosis of the cell with id `cellId` (each call a new one, as after re-running the cell). */
function diagnosisOf(cellId: string, id: string): IPanelState {
  const s = state('skip_connection');
  s.id = id;
  s.error.where = { cell: 2, cell_id: cellId, line: 4, label: 'cell 2, line 4' };
  return s;
}

describe('the diagnosis list of one notebook', () => {
  it('starts empty and lists diagnoses newest first as new', () => {
    const list = new DiagnosisList();
    expect(list.entries).toEqual([]);
    expect(list.current).toBeNull();
    list.add(diagnosisOf('a', 'd1'), trans);
    list.add(diagnosisOf('b', 'd2'), trans);
    expect(list.entries.map(e => [e.state.id, e.status])).toEqual([
      ['d2', 'new'],
      ['d1', 'new']
    ]);
    expect(list.current?.state.id).toBe('d2');
  });

  it('marks an older diagnosis of the same cell superseded, and it cannot be applied', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), trans);
    list.add(diagnosisOf('a', 'd2'), trans);
    const old = list.find('d1');
    expect(old?.status).toBe('superseded');
    expect(applyRefusal(old!, trans)).toMatch(/newer diagnosis/);
    expect(applyRefusal(list.find('d2')!, trans)).toBeNull();
  });

  it('marks everything stale on a kernel restart, and a later diagnosis is new', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), trans);
    list.kernelRestarted(trans);
    expect(list.find('d1')?.status).toBe('stale');
    expect(applyRefusal(list.find('d1')!, trans)).toMatch(/kernel restarted/);
    list.add(diagnosisOf('a', 'd2'), trans);
    expect(list.find('d2')?.status).toBe('new');
    expect(list.find('d1')?.status).toBe('stale');
    expect(list.current?.state.id).toBe('d2');
  });

  it('marks an entry stale while its cell differs, and current again when it matches', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), trans);
    list.recheck(() => 'cell 0 changed');
    expect([list.find('d1')?.status, list.find('d1')?.reason]).toEqual(['stale', 'cell 0 changed']);
    list.recheck(() => null);
    expect(list.find('d1')?.status).toBe('new');
  });

  it('keeps applied entries through rechecks and restarts; undo after a restart leaves it stale', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), trans);
    list.markApplied('d1', 0, 'Applied.');
    list.recheck(() => 'changed');
    expect(list.find('d1')?.status).toBe('applied');
    expect(applyRefusal(list.find('d1')!, trans)).toMatch(/already applied/);
    list.markUndone('d1', 'Restored.', trans);
    expect(list.find('d1')?.status).toBe('new');
    list.markApplied('d1', 0, 'Applied.');
    list.kernelRestarted(trans);
    expect(list.find('d1')?.status).toBe('applied');
    list.markUndone('d1', 'Restored.', trans);
    expect(list.find('d1')?.status).toBe('stale');
  });

  it('signals every change, and clear empties it', () => {
    const list = new DiagnosisList();
    let changes = 0;
    list.changed.connect(() => (changes += 1));
    list.add(diagnosisOf('a', 'd1'), trans);
    list.select('d1');
    list.problem = 'mismatch';
    list.clear();
    expect(changes).toBe(4);
    expect([list.entries.length, list.problem, list.selected]).toEqual([0, null, null]);
  });

  it('gives only fixes the kernel issued', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), trans);
    expect('fix' in issuedFix(list, 'd1', 0, trans)).toBe(true);
    expect(issuedFix(list, 'forged', 0, trans)).toEqual({
      refusal: expect.stringMatching(/did not come from this notebook's kernel/)
    });
    expect(issuedFix(list, 'd1', 42, trans)).toEqual({ refusal: 'This diagnosis has no fix 42.' });
  });
});
