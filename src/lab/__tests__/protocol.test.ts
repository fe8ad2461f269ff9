import { describe, expect, it } from 'vitest';

import { configure, parseKernelMessage } from '../protocol';
import { LAB_PROTOCOL_VERSION } from '../wire';
import { state } from '../../panel/__tests__/fixtures';

describe('the kernel protocol', () => {
  const base = { protocol: LAB_PROTOCOL_VERSION, version: '0.1.0', mismatch: 'Install the same version.' };

  it('accepts a hello, a diagnosis, the diagnoses of a sync and a refusal of its own version', () => {
    expect(parseKernelMessage({ ...base, type: 'hello' })).toEqual({
      ok: true,
      message: { ...base, type: 'hello' }
    });
    const parsed = parseKernelMessage({ ...base, type: 'diagnosis', state: state('leaf') });
    expect(parsed.ok && parsed.message.type === 'diagnosis' && parsed.message.state.id).toBe(
      state('leaf').id
    );
    const synced = parseKernelMessage({ ...base, type: 'diagnoses', states: [state('leaf'), state('view')] });
    expect(synced.ok && synced.message.type === 'diagnoses' && synced.message.states.map(s => s.id)).toEqual([
      state('leaf').id,
      state('view').id
    ]);
    expect(parseKernelMessage({ ...base, type: 'refused', message: 'Refused configure: no.' })).toEqual({
      ok: true,
      message: { ...base, type: 'refused', message: 'Refused configure: no.' }
    });
  });

  it("says what to do, in the kernel's words, when the kernel speaks another version", () => {
    const words = "This kernel's inplace_magic 9.0.0 speaks protocol 99: install the same version.";
    const parsed = parseKernelMessage({ type: 'diagnosis', protocol: 99, version: '9.0.0', mismatch: words });
    expect(parsed).toEqual({ ok: false, problem: words });
    // a kernel of protocol 1 carried no words of its own
    const old = parseKernelMessage({ type: 'diagnosis', protocol: 1, version: '0.0.1', state: {} });
    expect(old.ok ? '' : old.problem).toMatch(/protocol 1\b.*install the same inplace_magic version/);
  });

  it('refuses what is not a message it knows', () => {
    expect(parseKernelMessage('run this').ok).toBe(false);
    expect(parseKernelMessage(null).ok).toBe(false);
    expect(parseKernelMessage({ type: 'execute', protocol: LAB_PROTOCOL_VERSION, code: 'x' })).toEqual({
      ok: false,
      problem: 'Unknown message type "execute" from the kernel.'
    });
    expect(parseKernelMessage({ ...base, type: 'diagnosis', state: { fixes: [] } }).ok).toBe(false);
    expect(parseKernelMessage({ ...base, type: 'diagnoses', states: [{ id: 'x' }] }).ok).toBe(false);
  });

  it('sends the kernel settings, never code', () => {
    expect(configure(true)).toEqual({
      type: 'configure',
      protocol: LAB_PROTOCOL_VERSION,
      autoDiagnose: true
    });
  });
});
