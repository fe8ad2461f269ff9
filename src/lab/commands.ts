/**
 * The extension's commands (`inplace-magic:<verb>`), in the palette under one category; their
 * keyboard shortcuts are in the settings schema (schema/settings/plugin.json), so users can change
 * them in the Settings Editor.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { type ICommandPalette, Notification } from '@jupyterlab/apputils';

import { inplaceMagicIcon } from './icon';
import type { NotebookSession } from './session';
import type { ITrans } from './trans';

export const CommandIDs = {
  showSidebar: 'inplace-magic:show-sidebar',
  applyFix: 'inplace-magic:apply-fix',
  undoFix: 'inplace-magic:undo-fix',
  dismiss: 'inplace-magic:dismiss',
  clear: 'inplace-magic:clear'
} as const;

function notify(outcome: { applied: boolean; message: string }): void {
  if (outcome.applied) {
    Notification.success(outcome.message, { autoClose: 5000 });
  } else {
    Notification.warning(outcome.message, { autoClose: 8000 });
  }
}

export function addCommands(
  app: JupyterFrontEnd,
  palette: ICommandPalette | null,
  sidebarId: string,
  current: () => NotebookSession | null,
  trans: ITrans,
  unseen: () => number
): void {
  app.commands.addCommand(CommandIDs.showSidebar, {
    // the count of new diagnoses, where Notebook 7 shows the sidebar: its View menu (its side panel
    // has no tab bar, so no icon to badge); JupyterLab's palette and View menu show it too
    label: () => {
      const count = unseen();
      return count
        ? trans.__('Show In-place Diagnoses (%1 new)', count)
        : trans.__('Show In-place Diagnoses');
    },
    caption: trans.__('Show the sidebar of in-place autograd diagnoses'),
    icon: inplaceMagicIcon,
    execute: () => app.shell.activateById(sidebarId)
  });
  app.commands.addCommand(CommandIDs.applyFix, {
    label: trans.__('Apply the Selected In-place Fix'),
    isEnabled: () => {
      const entry = current()?.list.current;
      const fix = entry?.state.fixes.find(f => f.index === entry.chosenFix);
      return entry?.status === 'new' && !!fix?.can_apply;
    },
    execute: async () => {
      const session = current();
      const entry = session?.list.current;
      if (!session || !entry) {
        Notification.info(trans.__('No in-place diagnosis to apply in this notebook.'));
        return;
      }
      notify(await session.apply(entry.state.id, entry.chosenFix));
    }
  });
  app.commands.addCommand(CommandIDs.undoFix, {
    label: trans.__('Undo the Applied In-place Fix'),
    isEnabled: () => !!current()?.list.entries.some(e => e.status === 'applied'),
    execute: async () => {
      const session = current();
      const list = session?.list;
      const entry =
        list?.selected?.status === 'applied'
          ? list.selected
          : list?.entries.find(e => e.status === 'applied');
      if (!session || !entry) {
        Notification.info(trans.__('No applied in-place fix to undo in this notebook.'));
        return;
      }
      notify(await session.undo(entry.state.id));
    }
  });
  app.commands.addCommand(CommandIDs.dismiss, {
    label: trans.__('Dismiss the Selected In-place Diagnosis'),
    isEnabled: () => !!current()?.list.current,
    execute: () => {
      const session = current();
      const entry = session?.list.current;
      if (session && entry) {
        session.dismiss(entry.state.id);
      }
    }
  });
  app.commands.addCommand(CommandIDs.clear, {
    label: trans.__('Dismiss All In-place Diagnoses'),
    execute: () => current()?.clear()
  });
  const category = trans.__('In-place Magic');
  for (const command of Object.values(CommandIDs)) {
    palette?.addItem({ command, category });
  }
}
