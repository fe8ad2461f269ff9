/** The panel states the Python side built from real diagnoses (tests/fixtures/widget/regenerate.py). */
import type { AnyModel } from '@anywidget/types';

import type { IApplyRequest, IOutcome, IPanelModel, IPanelState } from '../wire';
import branchCat from '../../../tests/fixtures/widget/states/branch_cat.json';
import leaf from '../../../tests/fixtures/widget/states/leaf.json';
import optimizerStep from '../../../tests/fixtures/widget/states/optimizer_step.json';
import skipConnection from '../../../tests/fixtures/widget/states/skip_connection.json';
import skipShortcut from '../../../tests/fixtures/widget/states/skip_shortcut.json';
import view from '../../../tests/fixtures/widget/states/view.json';

const STATES = {
  skip_connection: skipConnection,
  skip_shortcut: skipShortcut,
  optimizer_step: optimizerStep,
  leaf,
  view,
  branch_cat: branchCat
};

export type FixtureName = keyof typeof STATES;
export const FIXTURE_NAMES = Object.keys(STATES) as FixtureName[];

/** A fresh deep copy, so a test may change it. */
export function state(name: FixtureName): IPanelState {
  return JSON.parse(JSON.stringify(STATES[name])) as IPanelState;
}

/** An anywidget model in memory; `kernel` answers what the front end sends, as the Python widget would. */
export class FakeModel implements AnyModel<IPanelModel> {
  sent: IApplyRequest[] = [];
  private values: IPanelModel;
  private handlers = new Map<string, Set<(...args: never[]) => void>>();
  widget_manager = {
    get_model: (): Promise<never> => Promise.reject(new Error('no widget manager in tests'))
  };

  constructor(
    panelState: IPanelState,
    private kernel: ((request: IApplyRequest) => IOutcome | null) | null = null
  ) {
    this.values = { state: panelState, outcome: null };
  }

  get<K extends keyof IPanelModel>(key: K): IPanelModel[K] {
    return this.values[key];
  }

  set<K extends keyof IPanelModel>(key: K, value: IPanelModel[K]): void {
    this.values[key] = value;
    this.handlers.get(`change:${String(key)}`)?.forEach(h => h());
  }

  on(eventName: string, callback: (...args: never[]) => void): void {
    if (!this.handlers.has(eventName)) {
      this.handlers.set(eventName, new Set());
    }
    this.handlers.get(eventName)!.add(callback);
  }

  off(eventName?: string | null, callback?: ((...args: never[]) => void) | null): void {
    if (eventName && callback) {
      this.handlers.get(eventName)?.delete(callback);
    }
  }

  save_changes(): void {}

  send(content: unknown): void {
    const request = content as IApplyRequest;
    this.sent.push(request);
    const outcome = this.kernel?.(request);
    if (outcome) {
      setTimeout(() => this.set('outcome', { ...outcome, requestId: request.requestId }), 0);
    }
  }
}
