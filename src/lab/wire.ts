/**
 * Generated from inplace_magic/lab/protocol.py (through schema/wire/lab.schema.json): do not edit.
 * Change the TypedDicts there and run `make protocol`.
 */

import type { IPanelState } from '../panel/wire';

export const LAB_PROTOCOL_VERSION = 3;
export const COMM_TARGET = 'inplace_magic';

/**
 * The messages of the comm on 'inplace_magic' between the kernel and the JupyterLab extension.
 */
export type LabMessage = KernelMessage | ExtensionMessage;
export type KernelMessage = IHello | IDiagnosisMessage | IDiagnoses | IRefused;
export type ExtensionMessage = IConfigure | ISync | IDismiss;

/**
 * Kernel -> extension, when `%load_ext inplace_magic` runs: the extension answers with its settings.
 */
export interface IHello {
  protocol: number;
  version: string;
  mismatch: string;
  type: 'hello';
}
/**
 * Kernel -> extension: one diagnosis and its fixes (the panel's state).
 */
export interface IDiagnosisMessage {
  protocol: number;
  version: string;
  mismatch: string;
  type: 'diagnosis';
  state: IPanelState;
}
/**
 * Kernel -> extension, the answer to a `Sync`: the diagnoses not dismissed, oldest first.
 */
export interface IDiagnoses {
  protocol: number;
  version: string;
  mismatch: string;
  type: 'diagnoses';
  states: IPanelState[];
}
/**
 * Kernel -> extension: a message the kernel did not accept, and why (nothing was done).
 */
export interface IRefused {
  protocol: number;
  version: string;
  mismatch: string;
  type: 'refused';
  message: string;
}
/**
 * Extension -> kernel: the user's settings that the kernel side applies.
 */
export interface IConfigure {
  type: 'configure';
  protocol: number;
  /**
   * run `%gradcheck on` in this kernel
   */
  autoDiagnose: boolean;
}
/**
 * Extension -> kernel: send the diagnoses of this kernel again (a reloaded page lost them).
 */
export interface ISync {
  type: 'sync';
  protocol: number;
}
/**
 * Extension -> kernel: leave this diagnosis out of later syncs (its panel still works).
 */
export interface IDismiss {
  type: 'dismiss';
  protocol: number;
  diagnosisId: string;
}
