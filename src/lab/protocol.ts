/**
 * Reading and writing the messages of the kernel's comm (their types are generated: `./wire`, from
 * inplace_magic/lab/protocol.py). What the kernel sends is checked before it is used: the right
 * protocol version (else the kernel's own words on what to do), a known type, a diagnosis with an id
 * and fixes. Nothing on this wire is code: the extension only edits with fixes that arrived here, and
 * sends the kernel its settings and requests, never anything to run.
 */
import type { IPanelState } from '../panel/wire';
import { LAB_PROTOCOL_VERSION, type IConfigure, type IDismiss, type ISync, type KernelMessage } from './wire';

export type Parsed = { ok: true; message: KernelMessage } | { ok: false; problem: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isState(value: unknown): value is IPanelState {
  return isRecord(value) && typeof value.id === 'string' && Array.isArray(value.fixes);
}

/** What the kernel says to do when it speaks another protocol version. */
function mismatch(data: Record<string, unknown>): string {
  // Every kernel message carries its own words for this (`mismatch`); only kernels of protocol 1,
  // which predates the field, need this sentence.
  return typeof data.mismatch === 'string'
    ? data.mismatch
    : `The kernel's inplace_magic speaks protocol ${String(data.protocol)}, which this JupyterLab ` +
        'extension does not: install the same inplace_magic version in the kernel and in JupyterLab.';
}

/** Check what the kernel sent: the right version, a known type, diagnoses with an id and fixes. */
export function parseKernelMessage(data: unknown): Parsed {
  if (!isRecord(data)) {
    return { ok: false, problem: 'The kernel sent a message that is not an object.' };
  }
  if (data.protocol !== LAB_PROTOCOL_VERSION) {
    return { ok: false, problem: mismatch(data) };
  }
  const base = {
    protocol: LAB_PROTOCOL_VERSION,
    version: typeof data.version === 'string' ? data.version : '?',
    mismatch: typeof data.mismatch === 'string' ? data.mismatch : ''
  };
  switch (data.type) {
    case 'hello':
      return { ok: true, message: { ...base, type: 'hello' } };
    case 'refused':
      return { ok: true, message: { ...base, type: 'refused', message: String(data.message) } };
    case 'diagnosis':
      return isState(data.state)
        ? { ok: true, message: { ...base, type: 'diagnosis', state: data.state } }
        : { ok: false, problem: 'The kernel sent a diagnosis without an id or fixes.' };
    case 'diagnoses':
      return Array.isArray(data.states) && data.states.every(isState)
        ? { ok: true, message: { ...base, type: 'diagnoses', states: data.states } }
        : { ok: false, problem: 'The kernel sent diagnoses without an id or fixes.' };
  }
  return { ok: false, problem: `Unknown message type ${JSON.stringify(data.type)} from the kernel.` };
}

export function configure(autoDiagnose: boolean): IConfigure {
  return { type: 'configure', protocol: LAB_PROTOCOL_VERSION, autoDiagnose };
}

export function sync(): ISync {
  return { type: 'sync', protocol: LAB_PROTOCOL_VERSION };
}

export function dismiss(diagnosisId: string): IDismiss {
  return { type: 'dismiss', protocol: LAB_PROTOCOL_VERSION, diagnosisId };
}
