/**
 * Generated from inplace_magic/panel/protocol.py (through schema/wire/panel.schema.json): do not edit.
 * Change the TypedDicts there and run `make protocol`.
 */

export const PROTOCOL_VERSION = 3;

/**
 * The diagnosis panel's synced traits (kernel -> front end) and its request (front end -> kernel).
 */
export type PanelPayload = IPanelModel | IApplyRequest;
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
export type TimelineEvent = 'created' | 'saved' | 'view' | 'written' | 'needed';
export type FixLabelTag =
  'verified' | 'unverified' | 'gradient-preserving' | 'changes-semantics' | 'verifying' | 'did-not-help';
export type VerificationStatus =
  'verifying' | 'verified' | 'changes_semantics' | 'did_not_help' | 'not_verified';
export type DiffOp = ' ' | '-' | '+' | '@';
export type OutcomeType = 'apply' | 'undo' | 'update';
export type ApplyPath = 'extension' | 'kernel-file' | 'copy' | 'none';
export type RequestType = 'apply' | 'undo';

/**
 * The widget's synced traits. Only the kernel writes them: a change from the page is ignored.
 */
export interface IPanelModel {
  state: IPanelState;
  outcome: IOutcome | null;
}
/**
 * The `state` trait: one diagnosis, everything the panel draws.
 */
export interface IPanelState {
  /**
   * PROTOCOL_VERSION; `version` and `mismatch` keep their meaning in every version
   */
  version: number;
  /**
   * what a front end that does not speak `version` shows
   */
  mismatch: string;
  id: string;
  kind: string;
  /**
   * the kind in plain words
   */
  kind_label: string;
  /**
   * in one line of text (what the text report says)
   */
  headline: string;
  /**
   * short module names (their repr on hover), no comments, cell references
   */
  headline_parts: ISegment[];
  explanation: string;
  explanation_parts: ISegment[];
  notes: string[];
  error: IErrorView;
  writer: ISiteView | null;
  saver: ISiteView | null;
  also_written_by: ISiteView[];
  tensor: ITensorView | null;
  skip: ISkipView | null;
  optimizer_step: boolean;
  reproduced: boolean;
  /**
   * cell index -> notebook cell id, where the kernel saw it
   */
  cell_ids: {
    [k: string]: string;
  };
  graph: IGraphView;
  timeline: ITimelineStep[];
  fixes: IFixView[];
}
/**
 * A piece of text to draw: plain, code, or a reference to a cell (which the front end names as
 * the notebook shows it now, and jumps to by id).
 */
export interface ISegment {
  text: string;
  /**
   * drawn as code
   */
  code?: boolean;
  /**
   * on hover: what the code stands for ("ReLU(inplace=True)")
   */
  title?: string;
  /**
   * a cell reference: the cell's In[] number when the kernel ran it
   */
  cell?: number;
  /**
   * the referenced cell's notebook id, where the kernel saw it
   */
  cell_id?: string;
}
export interface IErrorView {
  type: string;
  message: string;
  where: IWhere | null;
}
/**
 * A line of user code: a notebook cell (its index, maybe its id) or a file.
 */
export interface IWhere {
  line: number;
  label: string;
  parts: ISegment[];
  cell?: number;
  cell_id?: string;
  file?: string;
  code?: string;
  function?: string;
}
/**
 * The writer or the saver, as the panel shows it.
 */
export interface ISiteView {
  /**
   * short: "add_", "relu_", "Adam.step()"
   */
  op: string;
  op_full: string;
  module: string | null;
  module_type: string | null;
  /**
   * "overwrote it in place", "saved its output", ...
   */
  role: string;
  where: IWhere | null;
  defined_at: IWhere | null;
  callers: IWhere[];
  /**
   * autograd node of a saver
   */
  node: string | null;
  names: string[];
}
export interface ITensorView {
  /**
   * "float32[32, 16]"
   */
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
export interface IGraphView {
  nodes: IGraphNode[];
  edges: IGraphEdge[];
  max_level: number;
  /**
   * nodes dropped by the size cap
   */
  omitted: number;
}
export interface IGraphNode {
  id: string;
  roles: NodeRole[];
  op: string;
  module: string | null;
  /**
   * the node's first line: "relu_ · block.act", "split · h", "merge (add) · block"
   */
  title: string;
  /**
   * the code line, or what the node stands for
   */
  text: string;
  where: IWhere | null;
  /**
   * 0: the conflict itself; 1: the branches; 2: call sites ("expand" shows more)
   */
  level: number;
}
export interface IGraphEdge {
  id: string;
  source: string;
  target: string;
  kind: EdgeKind;
  /**
   * a shape, or the relation ("needs v1")
   */
  label: string;
  highlight: boolean;
  broken: boolean;
}
export interface ITimelineStep {
  event: TimelineEvent;
  version: number | null;
  actor: string;
  where: IWhere | null;
  conflict: boolean;
  text: string;
}
/**
 * A fix the kernel issued: what it changes and how far it can be trusted.
 */
export interface IFixView {
  /**
   * what an apply request names
   */
  index: number;
  kind: string;
  title: string;
  description: string;
  /**
   * the description, its cells as references
   */
  description_parts: ISegment[];
  verified: boolean;
  preserves_gradients: boolean | null;
  changes_semantics: boolean;
  labels: IFixLabel[];
  verification: IVerification;
  /**
   * the kernel offers this fix now (not while it is verifying it, not when it failed)
   */
  can_apply: boolean;
  /**
   * what to re-run after applying it: "Then re-run cell [2] and cell [3]."
   */
  rerun: string;
  rerun_parts: ISegment[];
  diffs: ITargetDiff[];
  edits: IEditView[];
  /**
   * cell index -> fixed full text (what "copy" offers)
   */
  cells: {
    [k: string]: string;
  };
  /**
   * cell index -> full text at diagnosis time, when known (stale-edit check)
   */
  before: {
    [k: string]: string;
  };
  notes: string[];
}
/**
 * One label of a fix: `tag` for its style, `text` for the user.
 */
export interface IFixLabel {
  tag: FixLabelTag;
  /**
   * "verified", "changes the training semantics"
   */
  text: string;
}
/**
 * How far the kernel got in checking a fix; it updates this while the panel is shown.
 */
export interface IVerification {
  status: VerificationStatus;
  /**
   * "verifying…", "verified, gradient-preserving", "did not help"
   */
  label: string;
  /**
   * why Apply waits or is not offered, or what the verification found ("" when nothing)
   */
  detail: string;
}
export interface ITargetDiff {
  cell: number | null;
  file: string | null;
  label: string;
  /**
   * the label, its cell as a reference
   */
  parts: ISegment[];
  lines: IDiffLine[];
}
export interface IDiffLine {
  op: DiffOp;
  text: string;
}
/**
 * One line-level edit: of a cell (by index) or of a file.
 */
export interface IEditView {
  line: number;
  old: string;
  new: string;
  cell?: number;
  file?: string;
}
/**
 * Kernel -> front end (the `outcome` trait): what the kernel did with a request, or why not.
 *
 * `type` "update" answers a change of a synced trait from the page, which the kernel ignores.
 */
export interface IOutcome {
  type: OutcomeType;
  /**
   * -1 when the request named no fix
   */
  fixIndex: number;
  path: ApplyPath;
  applied: boolean;
  message: string;
  /**
   * when the user must paste the fixed cells
   */
  copy: ICopyItem[];
  /**
   * the request's; "" for an update
   */
  requestId: string;
}
export interface ICopyItem {
  /**
   * "cell 0"
   */
  label: string;
  /**
   * the fixed cell, to paste over it
   */
  text: string;
}
/**
 * Front end -> kernel, when no JupyterLab extension claimed the Apply event. Never carries code.
 */
export interface IApplyRequest {
  type: RequestType;
  protocol: number;
  diagnosisId: string;
  fixIndex: number;
  /**
   * echoed in the outcome: a repeated request still changes the trait
   */
  requestId: string;
}
