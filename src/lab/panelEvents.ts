/**
 * The diagnosis panel's buttons in a notebook: claim the Apply/Undo/Reveal DOM events of the
 * diagnoses this notebook's kernel issued. The event only selects a fix (diagnosis id and index);
 * the session applies its own copy of it. Events it cannot take (another protocol, a diagnosis that
 * did not arrive over the comm) are left unclaimed, and the panel takes the kernel's path. A panel's
 * link request is claimed by the notebook that holds it: it names the panel's cells as the notebook
 * shows them and says which fix the cells hold.
 */
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import {
  APPLY_EVENT,
  type IApplyDetail,
  type ILinkDetail,
  type IRevealDetail,
  LINK_EVENT,
  REVEAL_EVENT,
  UNDO_EVENT
} from '../panel/events';
import { PROTOCOL_VERSION } from '../panel/wire';
import type { NotebookSession } from './session';

export function listenToPanels(
  tracker: INotebookTracker,
  sessionOf: (panel: NotebookPanel | null) => NotebookSession | null
): void {
  const owner = (event: Event): NotebookSession | null => {
    const target = event.target;
    return target instanceof Node
      ? sessionOf(tracker.find(panel => panel.node.contains(target)) ?? null)
      : null;
  };
  const claimable = (event: Event): [NotebookSession, IApplyDetail] | null => {
    const detail = (event as CustomEvent<IApplyDetail | undefined>).detail;
    const session = owner(event);
    if (!session || !detail || typeof detail.respond !== 'function' || detail.protocol !== PROTOCOL_VERSION) {
      return null;
    }
    return session.list.find(detail.diagnosisId) ? [session, detail] : null;
  };
  const onFix =
    (kind: 'apply' | 'undo') =>
    (event: Event): void => {
      const found = claimable(event);
      if (!found) {
        return;
      }
      const [session, detail] = found;
      event.preventDefault();
      detail.claim();
      const done =
        kind === 'apply'
          ? session.apply(detail.diagnosisId, detail.fixIndex)
          : session.undo(detail.diagnosisId);
      void done.then(outcome => detail.respond(outcome));
    };
  document.addEventListener(APPLY_EVENT, onFix('apply'));
  document.addEventListener(UNDO_EVENT, onFix('undo'));
  document.addEventListener(LINK_EVENT, event => {
    const detail = (event as CustomEvent<ILinkDetail | undefined>).detail;
    const session = owner(event);
    const target = event.target;
    if (
      session &&
      target instanceof Element &&
      detail &&
      typeof detail.update === 'function' &&
      detail.protocol === PROTOCOL_VERSION
    ) {
      event.preventDefault();
      session.link(target, detail);
    }
  });
  document.addEventListener(REVEAL_EVENT, event => {
    const detail = (event as CustomEvent<IRevealDetail | undefined>).detail;
    const session = owner(event);
    if (session && detail?.where) {
      event.preventDefault();
      void session.reveal(detail.where);
    }
  });
}
