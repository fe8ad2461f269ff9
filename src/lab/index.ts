/**
 * The JupyterLab extension (also in Notebook 7): a sidebar of the in-place autograd diagnoses of each
 * notebook's kernel, click-to-reveal, and Apply/Undo of the kernel's fixes through the notebook's
 * shared model, from the sidebar, the command palette and keyboard shortcuts (./commands) and the
 * diagnosis panel's buttons (./panelEvents). The sidebar's icon counts the diagnoses that arrived
 * while it was closed; the `autoOpen` setting opens it instead.
 */
import { ILayoutRestorer, type JupyterFrontEnd, type JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, type NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { addCommands, CommandIDs } from './commands';
import { Files } from './documents';
import { inplaceMagicIcon } from './icon';
import { listenToPanels } from './panelEvents';
import { type ISettings, NotebookSession } from './session';
import { DiagnosisSidebar } from './sidebar';

export { CommandIDs } from './commands';

const PLUGIN_ID = 'inplace-magic:plugin';

function activate(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  palette: ICommandPalette | null,
  settingRegistry: ISettingRegistry | null,
  translator: ITranslator | null,
  docManager: IDocumentManager | null,
  restorer: ILayoutRestorer | null
): void {
  const trans = (translator ?? nullTranslator).load('inplace_magic');
  const settings: ISettings = { autoDiagnose: false, highlightLines: true, autoOpen: false };
  const sessions = new Map<NotebookPanel, NotebookSession>();
  const files = new Files(docManager, trans);
  const sidebar = new DiagnosisSidebar(trans);
  sidebar.title.icon = inplaceMagicIcon;

  const sessionOf = (panel: NotebookPanel | null): NotebookSession | null =>
    panel ? (sessions.get(panel) ?? null) : null;
  // the icon's badge (and the View menu's item): diagnoses of every notebook that arrived while the
  // sidebar was closed
  const unseenCount = (): number => {
    let unseen = 0;
    sessions.forEach(session => (unseen += session.list.unseen));
    return unseen;
  };
  const badge = (): void => {
    const unseen = unseenCount();
    if (app.commands.hasCommand(CommandIDs.showSidebar)) {
      app.commands.notifyCommandChanged(CommandIDs.showSidebar);
    }
    sidebar.title.dataset = unseen ? { unseen: String(unseen) } : {};
    sidebar.title.caption = unseen
      ? trans._n('In-place autograd diagnoses: %1 new', 'In-place autograd diagnoses: %1 new', unseen)
      : trans.__('In-place autograd diagnoses');
  };
  const seeCurrent = (): void => {
    if (sidebar.isVisible) {
      sessionOf(tracker.currentWidget)?.list.markSeen();
    }
  };
  const track = (panel: NotebookPanel): void => {
    if (sessions.has(panel)) {
      return;
    }
    const session = new NotebookSession({
      panel,
      trans,
      settings: () => settings,
      openFile: (file, path) => files.target(file, path),
      revealFile: (file, line, path) => files.reveal(file, line, path),
      listShown: () => sidebar.isVisible && tracker.currentWidget === panel,
      arrived: () => {
        if (settings.autoOpen && tracker.currentWidget === panel) {
          app.shell.activateById(sidebar.id);
        }
      }
    });
    sessions.set(panel, session);
    session.list.changed.connect(badge);
    panel.disposed.connect(() => {
      session.dispose();
      sessions.delete(panel);
      badge();
      if (sidebar.current === session) {
        sidebar.setSource(sessionOf(tracker.currentWidget));
      }
    });
  };
  tracker.forEach(track);
  tracker.widgetAdded.connect((_, panel) => track(panel));
  tracker.currentChanged.connect((_, panel) => {
    // a new notebook may become current before the tracker announces it as added
    if (panel) {
      track(panel);
    }
    sidebar.setSource(sessionOf(panel));
    seeCurrent();
  });
  sidebar.setSource(sessionOf(tracker.currentWidget));
  sidebar.shown.connect(seeCurrent);

  try {
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, sidebar.id);
  } catch {
    // a shell without a left area (Notebook 7's file browser page): the panel's buttons still work
  }
  listenToPanels(tracker, sessionOf);
  addCommands(app, palette, sidebar.id, () => sessionOf(tracker.currentWidget), trans, unseenCount);

  if (settingRegistry) {
    const load = (values: ISettingRegistry.ISettings): void => {
      settings.autoDiagnose = values.get('autoDiagnose').composite === true;
      settings.highlightLines = values.get('highlightLines').composite !== false;
      settings.autoOpen = values.get('autoOpen').composite === true;
      sessions.forEach(session => session.settingsChanged());
    };
    void settingRegistry.load(PLUGIN_ID).then(
      values => {
        load(values);
        values.changed.connect(load);
      },
      () => undefined // the defaults stay in force
    );
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A sidebar of in-place autograd diagnoses with click-to-fix.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ISettingRegistry, ITranslator, IDocumentManager, ILayoutRestorer],
  activate
};

export default plugin;
