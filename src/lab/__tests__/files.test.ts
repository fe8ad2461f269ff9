import { describe, expect, it } from 'vitest';

import { contentsPath } from '../files';

describe('where a kernel-named file lives for the contents API', () => {
  it('maps absolute paths under the server root', () => {
    expect(contentsPath('/srv/work/models/blocks.py', '/srv/work', 'nb/train.ipynb')).toBe(
      'models/blocks.py'
    );
    expect(contentsPath('/srv/work/../etc/x.py', '/srv/work/', 'train.ipynb')).toBe(null);
    expect(contentsPath('/elsewhere/blocks.py', '/srv/work', 'train.ipynb')).toBe(null);
    expect(contentsPath('C:\\work\\blocks.py', 'C:\\work', 'train.ipynb')).toBe('blocks.py');
  });

  it('maps relative paths from the notebook folder, never above the root', () => {
    expect(contentsPath('blocks.py', '/srv', 'nb/train.ipynb')).toBe('nb/blocks.py');
    expect(contentsPath('../lib/./blocks.py', '/srv', 'nb/train.ipynb')).toBe('lib/blocks.py');
    expect(contentsPath('../../blocks.py', '/srv', 'nb/train.ipynb')).toBe(null);
  });
});
