/**
 * The kernel ⇄ JupyterLab extension protocol, front-end side.
 *
 * The Python side is `inplace_magic/lab_protocol.py`; both carry LAB_PROTOCOL_VERSION and must change
 * together. The kernel opens a comm on COMM_TARGET for every message (its open data is an IHello or an
 * IDiagnosisMessage); the extension answers on that comm with an IConfigure. Nothing on this wire is
 * code: the extension only edits with fixes that arrived here, and never runs what it receives.
 */
import type { IPanelState } from '../panel/protocol';

export const LAB_PROTOCOL_VERSION = 1;
export const COMM_TARGET = 'inplace_magic';

/** Kernel -> extension, when `%load_ext inplace_magic` runs. */
export interface IHello {
  type: 'hello';
  protocol: number;
  version: string;
}

/** Kernel -> extension: one diagnosis and its fixes (the panel's state). */
export interface IDiagnosisMessage {
  type: 'diagnosis';
  protocol: number;
  version: string;
  state: IPanelState;
}

export type KernelMessage = IHello | IDiagnosisMessage;

/** Extension -> kernel: the settings the kernel side applies. */
export interface IConfigure {
  type: 'configure';
  protocol: number;
  autoDiagnose: boolean;
}

export type Parsed = { ok: true; message: KernelMessage } | { ok: false; problem: string };

/** The actionable message for a kernel that speaks another protocol version. */
export function mismatchMessage(theirs: unknown, theirVersion: unknown): string {
  const version = typeof theirVersion === 'string' ? ` ${theirVersion}` : '';
  return (
    `The kernel's inplace_magic${version} speaks protocol ${String(theirs)} and this JupyterLab ` +
    `extension speaks ${LAB_PROTOCOL_VERSION}: install the same inplace_magic version in the ` +
    "kernel's environment and in JupyterLab's, reload the page, then restart the kernel."
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Check what the kernel sent: the right version, a known type, a diagnosis with an id and fixes. */
export function parseKernelMessage(data: unknown): Parsed {
  if (!isRecord(data)) {
    return { ok: false, problem: 'The kernel sent a message that is not an object.' };
  }
  if (data.protocol !== LAB_PROTOCOL_VERSION) {
    return { ok: false, problem: mismatchMessage(data.protocol, data.version) };
  }
  const version = typeof data.version === 'string' ? data.version : '?';
  if (data.type === 'hello') {
    return { ok: true, message: { type: 'hello', protocol: LAB_PROTOCOL_VERSION, version } };
  }
  if (data.type === 'diagnosis') {
    const state = data.state;
    if (!isRecord(state) || typeof state.id !== 'string' || !Array.isArray(state.fixes)) {
      return { ok: false, problem: 'The kernel sent a diagnosis without an id or fixes.' };
    }
    return {
      ok: true,
      message: {
        type: 'diagnosis',
        protocol: LAB_PROTOCOL_VERSION,
        version,
        state: state as unknown as IPanelState
      }
    };
  }
  return { ok: false, problem: `Unknown message type ${JSON.stringify(data.type)} from the kernel.` };
}

export function configure(autoDiagnose: boolean): IConfigure {
  return { type: 'configure', protocol: LAB_PROTOCOL_VERSION, autoDiagnose };
}
