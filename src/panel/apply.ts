/**
 * Apply and Undo: offer the fix to the JupyterLab extension by a DOM event, and take the kernel path
 * when nobody claims it. The outcome says which path was taken.
 */
import type { AnyModel } from '@anywidget/types';

import {
  APPLY_EVENT,
  CLAIM_TIMEOUT_MS,
  RESPOND_TIMEOUT_MS,
  UNDO_EVENT,
  type IApplyDetail,
  type IExtensionOutcome
} from './events';
import {
  PROTOCOL_VERSION,
  type ApplyPath,
  type IApplyRequest,
  type ICopyItem,
  type IFixView,
  type IOutcome,
  type IPanelModel,
  type IPanelState
} from './wire';
export type Offer = { claimed: false } | { claimed: true; outcome: IExtensionOutcome | null };

export interface ITimeouts {
  claim: number;
  respond: number;
  kernel: number;
}

export const DEFAULT_TIMEOUTS: ITimeouts = {
  claim: CLAIM_TIMEOUT_MS,
  respond: RESPOND_TIMEOUT_MS,
  kernel: 30000
};

/** What the panel shows after Apply or Undo. */
export interface IStatus {
  path: ApplyPath;
  applied: boolean;
  message: string;
  copy: ICopyItem[];
}

/**
 * Dispatch a claimable event from `el`: resolves `{claimed: false}` when nobody claimed it within
 * `timeouts.claim`, else with the listener's outcome (null when it never answered).
 */
export function offer(
  el: HTMLElement,
  name: string,
  base: Omit<IApplyDetail, 'claim' | 'respond'>,
  timeouts: ITimeouts = DEFAULT_TIMEOUTS
): Promise<Offer> {
  return new Promise(resolve => {
    let claimed = false;
    let done = false;
    const finish = (result: Offer): void => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        resolve(result);
      }
    };
    const claim = (): void => {
      if (!claimed && !done) {
        claimed = true;
        clearTimeout(timer);
        timer = setTimeout(() => finish({ claimed: true, outcome: null }), timeouts.respond);
      }
    };
    const detail: IApplyDetail = {
      ...base,
      claim,
      respond: outcome => {
        claim();
        finish({ claimed: true, outcome });
      }
    };
    let timer = setTimeout(() => {
      if (!claimed) {
        finish({ claimed: false });
      }
    }, timeouts.claim);
    const event = new CustomEvent(name, { bubbles: true, composed: true, cancelable: true, detail });
    if (!el.dispatchEvent(event)) {
      claim();
    }
  });
}

/** Ask the kernel to take its path for a fix, and wait for the `outcome` trait to answer. */
export function askKernel(
  model: AnyModel<IPanelModel>,
  request: IApplyRequest,
  timeoutMs: number
): Promise<IOutcome> {
  return new Promise(resolve => {
    const listener = (): void => {
      // an outcome of type 'update' (the kernel refusing a trait change) answers no request
      const outcome = model.get('outcome');
      if (outcome && outcome.type !== 'update' && outcome.requestId === request.requestId) {
        clearTimeout(timer);
        model.off('change:outcome', listener);
        resolve(outcome);
      }
    };
    const timer = setTimeout(() => {
      model.off('change:outcome', listener);
      resolve({
        type: request.type,
        fixIndex: request.fixIndex,
        path: 'none',
        applied: false,
        message: 'The kernel did not answer. It answers when the running cell finishes; try again then.',
        copy: [],
        requestId: request.requestId
      });
    }, timeoutMs);
    model.on('change:outcome', listener);
    model.send(request);
  });
}

/** Apply/Undo for one panel, remembering which path applied each fix. */
export class FixController {
  private appliedBy = new Map<number, ApplyPath>();
  private requests = 0;

  constructor(
    private el: HTMLElement,
    private model: AnyModel<IPanelModel>,
    private state: () => IPanelState,
    private timeouts: ITimeouts = DEFAULT_TIMEOUTS
  ) {}

  pathOf(fix: IFixView): ApplyPath | null {
    return this.appliedBy.get(fix.index) ?? null;
  }

  async apply(fix: IFixView): Promise<IStatus> {
    const result = await offer(this.el, APPLY_EVENT, this.detail(fix), this.timeouts);
    if (result.claimed) {
      const status = fromExtension(result.outcome);
      if (status.applied) {
        this.appliedBy.set(fix.index, 'extension');
      }
      return status;
    }
    const outcome = await askKernel(this.model, this.request('apply', fix), this.timeouts.kernel);
    if (outcome.applied && outcome.path === 'kernel-file') {
      this.appliedBy.set(fix.index, 'kernel-file');
    }
    return { path: outcome.path, applied: outcome.applied, message: outcome.message, copy: outcome.copy };
  }

  async undo(fix: IFixView): Promise<IStatus> {
    const path = this.appliedBy.get(fix.index);
    if (path === 'extension') {
      const result = await offer(this.el, UNDO_EVENT, this.detail(fix), this.timeouts);
      const status = result.claimed
        ? fromExtension(result.outcome)
        : {
            path: 'none' as const,
            applied: false,
            message: 'The JupyterLab extension is gone: use the editor’s undo.',
            copy: []
          };
      if (status.applied) {
        this.appliedBy.delete(fix.index);
      }
      return status;
    }
    const outcome = await askKernel(this.model, this.request('undo', fix), this.timeouts.kernel);
    if (outcome.applied) {
      this.appliedBy.delete(fix.index);
    }
    return { path: outcome.path, applied: outcome.applied, message: outcome.message, copy: [] };
  }

  /** The event selects the fix; the extension applies its own copy of it. */
  private detail(fix: IFixView): Omit<IApplyDetail, 'claim' | 'respond'> {
    return { protocol: PROTOCOL_VERSION, diagnosisId: this.state().id, fixIndex: fix.index };
  }

  private request(type: 'apply' | 'undo', fix: IFixView): IApplyRequest {
    this.requests += 1;
    return {
      type,
      protocol: PROTOCOL_VERSION,
      diagnosisId: this.state().id,
      fixIndex: fix.index,
      requestId: `${this.state().id}:${this.requests}`
    };
  }
}

/** The extension's outcome as the status line: its own words, one sentence each, said once. */
function fromExtension(outcome: IExtensionOutcome | null): IStatus {
  if (outcome === null) {
    return {
      path: 'extension',
      applied: false,
      message: 'The JupyterLab extension took the request but did not answer.',
      copy: []
    };
  }
  return { path: 'extension', applied: outcome.applied, message: outcome.message, copy: [] };
}
