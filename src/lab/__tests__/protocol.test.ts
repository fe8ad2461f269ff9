import { describe, expect, it } from 'vitest';

import { configure, LAB_PROTOCOL_VERSION, parseKernelMessage } from '../protocol';
import { state } from '../../panel/__tests__/fixtures';

describe('the kernel protocol', () => {
  it('accepts a hello and a diagnosis of its own version', () => {
    expect(parseKernelMessage({ type: 'hello', protocol: LAB_PROTOCOL_VERSION, version: '0.1.0' })).toEqual({
      ok: true,
      message: { type: 'hello', protocol: LAB_PROTOCOL_VERSION, version: '0.1.0' }
    });
    const diagnosis = {
      type: 'diagnosis',
      protocol: LAB_PROTOCOL_VERSION,
      version: '0.1.0',
      state: state('leaf')
    };
    const parsed = parseKernelMessage(diagnosis);
    expect(parsed.ok && parsed.message.type === 'diagnosis' && parsed.message.state.id).toBe(
      state('leaf').id
    );
  });

  it('says what to do when the kernel speaks another version', () => {
    const parsed = parseKernelMessage({ type: 'diagnosis', protocol: 99, version: '9.0.0', state: {} });
    expect(parsed.ok).toBe(false);
    const problem = parsed.ok ? '' : parsed.problem;
    expect(problem).toContain('protocol 99');
    expect(problem).toContain(`speaks ${LAB_PROTOCOL_VERSION}`);
    expect(problem).toContain('9.0.0');
    expect(problem).toMatch(/install the same inplace_magic version .* restart the kernel/);
  });

  it('refuses what is not a message it knows', () => {
    expect(parseKernelMessage('run this').ok).toBe(false);
    expect(parseKernelMessage(null).ok).toBe(false);
    expect(parseKernelMessage({ type: 'execute', protocol: LAB_PROTOCOL_VERSION, code: 'x' })).toEqual({
      ok: false,
      problem: 'Unknown message type "execute" from the kernel.'
    });
    expect(
      parseKernelMessage({ type: 'diagnosis', protocol: LAB_PROTOCOL_VERSION, state: { fixes: [] } }).ok
    ).toBe(false);
  });

  it('sends the kernel settings, never code', () => {
    expect(configure(true)).toEqual({
      type: 'configure',
      protocol: LAB_PROTOCOL_VERSION,
      autoDiagnose: true
    });
  });
});
