/**
 * The panel's contract inside the browser: the DOM events it fires for the JupyterLab extension.
 * (What travels between the kernel and the front end is the generated `./wire`.)
 *
 * Apply handshake: the panel dispatches a bubbling, cancelable `inplace-magic:apply` CustomEvent from
 * its element. A listener that will apply the fix claims it, synchronously with
 * `event.preventDefault()` or within CLAIM_TIMEOUT_MS with `detail.claim()`, then reports with
 * `detail.respond(outcome)`. Unclaimed events fall back to the kernel (an `IApplyRequest`), which
 * applies the fix it issued under the diagnosis id and fix index. The detail only selects a fix: a
 * listener applies the fix that reached it from the kernel under that id and index (and checks its
 * targets against the notebook itself), so nothing in the page can describe a fix to apply.
 */
import { PROTOCOL_VERSION, type IWhere } from './wire';

export const APPLY_EVENT = 'inplace-magic:apply';
export const UNDO_EVENT = 'inplace-magic:undo';
export const REVEAL_EVENT = 'inplace-magic:reveal';
/**
 * Link handshake: once drawn, the panel dispatches a bubbling, cancelable `inplace-magic:link` event
 * naming its diagnosis and the cells it refers to. A listener that knows the notebook claims it
 * (`preventDefault()`) and calls `detail.update(link)` then and whenever the notebook changes, while
 * the panel's element is in the page: the cells' names as the notebook shows them now, and which fix
 * is applied to them. Nothing else changes the panel's text.
 */
export const LINK_EVENT = 'inplace-magic:link';

/** How long an unclaimed Apply/Undo event waits before the kernel path is taken. */
export const CLAIM_TIMEOUT_MS = 1000;
/** How long a claimed event may take to respond. */
export const RESPOND_TIMEOUT_MS = 15000;

/** What a listener reports after a claimed Apply or Undo. */
export interface IExtensionOutcome {
  applied: boolean;
  message: string;
}

export interface IApplyDetail {
  protocol: number;
  diagnosisId: string;
  fixIndex: number;
  /** Claim the event (as `preventDefault()` does) so the kernel path is not taken. */
  claim(): void;
  /** Report the outcome of a claimed event. */
  respond(outcome: IExtensionOutcome): void;
}

/** A cell the panel refers to: its In[] number when the kernel ran it, and its id where known. */
export interface ICellRef {
  cell: number;
  cellId: string | null;
}

/** The key of a cell reference in `ILink.names`. */
export function refKey(ref: { cell?: number | null; cell_id?: string | null }): string | null {
  if (ref.cell_id) {
    return `id:${ref.cell_id}`;
  }
  return typeof ref.cell === 'number' ? `n:${ref.cell}` : null;
}

/** What the notebook tells a linked panel. */
export interface ILink {
  /** refKey -> the cell's name as the notebook shows it now ("cell [7]"). */
  names: Record<string, string>;
  /** The fix whose change the notebook's cells hold now, or null. */
  appliedFix: number | null;
  /** Why the panel's fixes cannot be applied now ("" when they can). */
  refusal: string;
}

export interface ILinkDetail {
  protocol: number;
  diagnosisId: string;
  cells: ICellRef[];
  update(link: ILink): void;
}

export interface IRevealDetail {
  protocol: number;
  diagnosisId: string;
  where: IWhere;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The state's problem, or null when this front end can render it. */
export function stateProblem(state: unknown): string | null {
  if (!isRecord(state)) {
    return 'The panel has no diagnosis to show.';
  }
  if (state.version !== PROTOCOL_VERSION) {
    // Every state says what to do in its own words (`mismatch`); only the states of protocol 1,
    // which predates the field, need this sentence.
    return typeof state.mismatch === 'string'
      ? state.mismatch
      : 'This panel was made by another inplace_magic version: restart the kernel after upgrading ' +
          'inplace_magic, then re-run the cell.';
  }
  return null;
}
