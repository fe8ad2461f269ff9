/**
 * The diagnosis panel's wire protocol, front-end side.
 *
 * Two contracts live here and nowhere else:
 * - the synced widget state, mirrored from `inplace_magic/panel_protocol.py` (same PROTOCOL_VERSION);
 * - the DOM events the panel fires for the JupyterLab extension, and the kernel messages it sends
 *   when no extension claims an event.
 *
 * Apply handshake: the panel dispatches a bubbling, cancelable `inplace-magic:apply` CustomEvent from
 * its element. A listener that will apply the fix claims it, synchronously with
 * `event.preventDefault()` or within CLAIM_TIMEOUT_MS with `detail.claim()`, then reports with
 * `detail.respond(outcome)`. Unclaimed events fall back to the kernel (`IApplyRequest`). The detail
 * carries the expected old source of every target so a listener can refuse a cell edited since.
 */

export const PROTOCOL_VERSION = 1;

export const APPLY_EVENT = 'inplace-magic:apply';
export const UNDO_EVENT = 'inplace-magic:undo';
export const REVEAL_EVENT = 'inplace-magic:reveal';

/** How long an unclaimed Apply/Undo event waits before the kernel path is taken. */
export const CLAIM_TIMEOUT_MS = 1000;
/** How long a claimed event may take to respond. */
export const RESPOND_TIMEOUT_MS = 15000;

export type NodeRole =
  | 'tensor'
  | 'leaf'
  | 'saver'
  | 'writer'
  | 'optimizer'
  | 'split'
  | 'merge'
  | 'step'
  | 'backward'
  | 'caller'
  | 'more';
export type EdgeKind = 'data' | 'skip' | 'saved' | 'writes' | 'needs' | 'calls';
export type FixLabel = 'verified' | 'unverified' | 'gradient-preserving' | 'changes-semantics';
export type ApplyPath = 'extension' | 'kernel-file' | 'copy' | 'none';

export interface IWhere {
  cell?: number;
  cell_id?: string;
  file?: string;
  line: number;
  code?: string;
  function?: string;
  label?: string;
}

export interface ISiteView {
  op: string;
  op_full: string;
  module: string | null;
  module_type: string | null;
  role: string;
  where: IWhere | null;
  defined_at: IWhere | null;
  callers: IWhere[];
  node: string | null;
  names: string[];
}

export interface ITensorView {
  label: string;
  shape: number[];
  dtype: string;
  parameter: string | null;
  is_leaf: boolean;
  requires_grad: boolean;
  saved_version: number | null;
  version: number | null;
}

export interface ISkipView {
  source: IWhere | null;
  merge: IWhere | null;
  merge_kind: string;
}

export interface IGraphNode {
  id: string;
  roles: NodeRole[];
  op: string;
  module: string | null;
  text: string;
  where: IWhere | null;
  level: number;
}

export interface IGraphEdge {
  id: string;
  source: string;
  target: string;
  kind: EdgeKind;
  label: string;
  highlight: boolean;
  broken: boolean;
}

export interface IGraphView {
  nodes: IGraphNode[];
  edges: IGraphEdge[];
  max_level: number;
  omitted: number;
}

export interface ITimelineStep {
  event: 'created' | 'saved' | 'view' | 'written' | 'needed';
  version: number | null;
  actor: string;
  where: IWhere | null;
  conflict: boolean;
  text: string;
}

export interface IDiffLine {
  op: ' ' | '-' | '+' | '@';
  text: string;
}

export interface ITargetDiff {
  cell: number | null;
  file: string | null;
  label: string;
  lines: IDiffLine[];
}

export interface IEdit {
  cell?: number;
  file?: string;
  line: number;
  old: string;
  new: string;
}

export interface IFixView {
  index: number;
  kind: string;
  title: string;
  description: string;
  verified: boolean;
  preserves_gradients: boolean | null;
  changes_semantics: boolean;
  labels: FixLabel[];
  diffs: ITargetDiff[];
  edits: IEdit[];
  cells: Record<string, string>;
  before: Record<string, string>;
  notes: string[];
}

export interface IPanelState {
  version: number;
  id: string;
  kind: string;
  headline: string;
  explanation: string;
  notes: string[];
  error: { type: string; message: string; where: IWhere | null };
  writer: ISiteView | null;
  saver: ISiteView | null;
  also_written_by: ISiteView[];
  tensor: ITensorView | null;
  skip: ISkipView | null;
  optimizer_step: boolean;
  reproduced: boolean;
  cell_ids: Record<string, string>;
  graph: IGraphView;
  timeline: ITimelineStep[];
  fixes: IFixView[];
}

/** Kernel -> front end, in the `outcome` trait. */
export interface IOutcome {
  type: 'apply' | 'undo';
  fixIndex: number;
  path: ApplyPath;
  applied: boolean;
  message: string;
  copy: { label: string; text: string }[];
  requestId?: string;
}

/** The synced traits of the widget. */
export interface IPanelModel {
  state: IPanelState;
  outcome: IOutcome | null;
}

/** Front end -> kernel, only when no extension claimed the event. Never carries code. */
export interface IApplyRequest {
  type: 'apply' | 'undo';
  protocol: number;
  diagnosisId: string;
  fixIndex: number;
  /** Echoed in the outcome, so a repeated request still changes the trait. */
  requestId: string;
}

/** What a target (cell or file) must still contain for the fix to apply. */
export interface IExpectedTarget {
  cell: number | null;
  cellId: string | null;
  file: string | null;
  /** The full text at diagnosis time, when the kernel knew it. */
  oldSource: string | null;
  /** The full fixed text, when the fix gives it. */
  newSource: string | null;
  /** The edited lines as they were: always present. */
  oldLines: { line: number; text: string }[];
}

/** What a listener reports after a claimed Apply or Undo. */
export interface IExtensionOutcome {
  applied: boolean;
  message: string;
}

export interface IApplyDetail {
  protocol: number;
  diagnosisId: string;
  fixIndex: number;
  title: string;
  changesSemantics: boolean;
  edits: IEdit[];
  expected: IExpectedTarget[];
  /** Claim the event (as `preventDefault()` does) so the kernel path is not taken. */
  claim(): void;
  /** Report the outcome of a claimed event. */
  respond(outcome: IExtensionOutcome): void;
}

export interface IRevealDetail {
  protocol: number;
  diagnosisId: string;
  where: IWhere;
}

/** The state's problem, or null when this front end can render it. */
export function stateProblem(state: unknown): string | null {
  if (typeof state !== 'object' || state === null) {
    return 'The panel has no diagnosis to show.';
  }
  const version = (state as { version?: unknown }).version;
  if (version !== PROTOCOL_VERSION) {
    return (
      `This panel was made by an inplace_magic that speaks protocol ${String(version)}, ` +
      `and its front end speaks ${PROTOCOL_VERSION}: restart the kernel after upgrading ` +
      'inplace_magic, then re-run the cell.'
    );
  }
  return null;
}
