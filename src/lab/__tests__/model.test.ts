import { describe, expect, it } from 'vitest';

import { applyRefusal, DiagnosisList, issuedFix } from '../model';
import type { IPanelState } from '../../panel/wire';
import { state } from '../../panel/__tests__/fixtures';
import { trans } from './helpers';

/** A diagnosis of the cell with id `cellId` (each call a new one, as after re-running the cell). */
function diagnosisOf(cellId: string, id: string): IPanelState {
  const s = state('skip_connection');
  s.id = id;
  s.error.where = { cell: 2, cell_id: cellId, line: 4, label: 'cell [2], line 4', parts: [] };
  return s;
}

const stale = { status: 'stale' as const, reason: 'cell [0] changed', appliedFix: null };
const fresh = { status: 'new' as const, reason: '', appliedFix: null };

describe('the diagnosis list of one notebook', () => {
  it('starts empty and lists diagnoses newest first as new', () => {
    const list = new DiagnosisList();
    expect(list.entries).toEqual([]);
    expect(list.current).toBeNull();
    list.add(diagnosisOf('a', 'd1'), true);
    list.add(diagnosisOf('b', 'd2'), true);
    expect(list.entries.map(e => [e.state.id, e.status])).toEqual([
      ['d2', 'new'],
      ['d1', 'new']
    ]);
    expect(list.current?.state.id).toBe('d2');
  });

  it('keeps one entry per failing cell: a re-run replaces the older diagnosis', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), true);
    list.add(diagnosisOf('b', 'd2'), true);
    list.add(diagnosisOf('a', 'd3'), true);
    expect(list.entries.map(e => e.state.id)).toEqual(['d3', 'd2']);
    expect(list.find('d1')).toBeNull();
  });

  it('takes the same diagnosis again as an update of its state (a verification, a sync)', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), true);
    list.choose('d1', 1);
    const verified = diagnosisOf('a', 'd1');
    verified.fixes[0].verification = { status: 'verified', label: 'verified', detail: '' };
    list.add(verified, false);
    expect(list.entries).toHaveLength(1);
    expect(list.find('d1')?.state.fixes[0].verification.status).toBe('verified');
    expect([list.find('d1')?.chosenFix, list.find('d1')?.unseen]).toEqual([1, false]);
  });

  it('takes each status from what the notebook says, and refuses to apply what is not new', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), true);
    list.recheck(() => stale);
    const entry = list.find('d1')!;
    expect([entry.status, entry.reason]).toEqual(['stale', 'cell [0] changed']);
    expect(applyRefusal(entry, 0, trans)).toBe('cell [0] changed');
    list.recheck(() => ({ status: 'applied', reason: '', appliedFix: 0 }));
    expect(applyRefusal(list.find('d1')!, 0, trans)).toMatch(/undo it first/);
    list.recheck(() => fresh);
    expect(applyRefusal(list.find('d1')!, 0, trans)).toBeNull();
  });

  it('refuses a fix the kernel does not offer now (while it verifies it)', () => {
    const list = new DiagnosisList();
    const s = diagnosisOf('a', 'd1');
    s.fixes[0].can_apply = false;
    s.fixes[0].verification = {
      status: 'verifying',
      label: 'verifying…',
      detail: 'The kernel is running it.'
    };
    list.add(s, true);
    expect(applyRefusal(list.find('d1')!, 0, trans)).toBe('The kernel is running it.');
  });

  it('counts what arrived unseen until the sidebar is shown', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), false);
    list.add(diagnosisOf('b', 'd2'), false);
    list.add(diagnosisOf('c', 'd3'), true);
    expect(list.unseen).toBe(2);
    list.markSeen();
    expect(list.unseen).toBe(0);
  });

  it('dismisses an entry from the list, and still finds it for its panel', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), true);
    list.add(diagnosisOf('b', 'd2'), true);
    list.select('d1');
    expect(list.dismiss('d1')).toBe(true);
    expect(list.dismiss('d1')).toBe(false);
    expect(list.entries.map(e => e.state.id)).toEqual(['d2']);
    expect([list.selected, list.find('d1')?.dismissed]).toEqual([null, true]);
  });

  it('marks the kernel restarted for every entry', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), true);
    list.kernelRestarted();
    expect(list.find('d1')?.restarted).toBe(true);
  });

  it('signals every change, and clear dismisses everything', () => {
    const list = new DiagnosisList();
    let changes = 0;
    list.changed.connect(() => (changes += 1));
    list.add(diagnosisOf('a', 'd1'), true);
    list.select('d1');
    list.problem = 'mismatch';
    expect(list.clear()).toEqual(['d1']);
    expect(changes).toBe(4);
    expect([list.entries.length, list.problem, list.selected]).toEqual([0, null, null]);
  });

  it('gives only fixes the kernel issued', () => {
    const list = new DiagnosisList();
    list.add(diagnosisOf('a', 'd1'), true);
    expect('fix' in issuedFix(list, 'd1', 0, trans)).toBe(true);
    expect(issuedFix(list, 'forged', 0, trans)).toEqual({
      refusal: expect.stringMatching(/did not come from this notebook's kernel/)
    });
    expect(issuedFix(list, 'd1', 42, trans)).toEqual({ refusal: 'This diagnosis has no fix 42.' });
  });
});
