import { describe, expect, it } from 'vitest';

import { classify, foldPlan } from '../folding';

const ESC = String.fromCharCode(27);
const color = (text: string): string => `${ESC}[36m${text}${ESC}[39m`;

// the entries of IPython's traceback of a %%gradcheck cell, as nbformat keeps them
const TRACEBACK = [
  color('-------'),
  `${color('RuntimeError')}    Traceback (most recent call last)`,
  `${color('Cell')} ${color('In[3]')}, line 5\n      4 loss = block(x)\n----> 5 loss.backward()`,
  `${color('File ')}/venv/lib/python3.11/site-packages/torch/_tensor.py:623, in Tensor.backward(self)\n    613 ...`,
  `${color('File ')}/venv/lib/python3.11/site-packages/torch/autograd/__init__.py:395, in backward(tensors)`,
  `${color('File ')}/work/models.py:12, in forward(self, x)\n     12 x += 1`,
  `${color('File ')}/usr/lib/python3.11/contextlib.py:81, in inner(*args)`,
  `${color('RuntimeError')}: one of the variables needed for gradient computation has been modified`,
  'inplace_magic: diagnosed by replaying the cell'
];

describe('folding the library frames of a traceback', () => {
  it('tells the user frames from the library frames and the rest', () => {
    expect(TRACEBACK.map(e => classify(e, []).kind)).toEqual([
      'other',
      'other',
      'user',
      'library',
      'library',
      'user',
      'library',
      'other',
      'other'
    ]);
    expect(classify(TRACEBACK[3], []).package).toBe('torch');
    // a file the diagnosis located is the user's, wherever it is installed
    expect(classify(TRACEBACK[3], ['torch/_tensor.py']).kind).toBe('user');
  });

  it('keeps every entry but the library frames, each run of them folded into one', () => {
    const plan = foldPlan(TRACEBACK, []);
    expect(plan.map(item => ('entry' in item ? item.entry : item))).toEqual([
      TRACEBACK[0],
      TRACEBACK[1],
      TRACEBACK[2],
      { frames: 2, packages: ['torch'] },
      TRACEBACK[5],
      { frames: 1, packages: ['contextlib'] },
      TRACEBACK[7],
      TRACEBACK[8]
    ]);
  });
});
