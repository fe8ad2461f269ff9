/**
 * The JupyterLab extension: a sidebar of the in-place autograd diagnoses of each notebook's kernel,
 * click-to-reveal, and Apply/Undo of the kernel's fixes through the notebook's shared model, from the
 * sidebar, the command palette (./commands) and the diagnosis panel's buttons (./panelEvents).
 */
import { ILayoutRestorer, type JupyterFrontEnd, type JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, type NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { addCommands } from './commands';
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
  const settings: ISettings = { autoDiagnose: false, highlightLines: true };
  const sessions = new Map<NotebookPanel, NotebookSession>();
  const files = new Files(docManager, trans);
  const sidebar = new DiagnosisSidebar(trans);
  sidebar.title.icon = inplaceMagicIcon;

  const sessionOf = (panel: NotebookPanel | null): NotebookSession | null =>
    panel ? (sessions.get(panel) ?? null) : null;
  const track = (panel: NotebookPanel): void => {
    if (sessions.has(panel)) {
      return;
    }
    const session = new NotebookSession({
      panel,
      trans,
      settings: () => settings,
      openFile: (file, path) => files.target(file, path),
      revealFile: (file, line, path) => files.reveal(file, line, path)
    });
    sessions.set(panel, session);
    panel.disposed.connect(() => {
      session.dispose();
      sessions.delete(panel);
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
  });
  sidebar.setSource(sessionOf(tracker.currentWidget));

  try {
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, sidebar.id);
  } catch {
    // a shell without a left area (some Notebook 7 pages): the panel's buttons still work
  }
  listenToPanels(tracker, sessionOf);
  addCommands(app, palette, sidebar.id, () => sessionOf(tracker.currentWidget), trans);

  if (settingRegistry) {
    const load = (values: ISettingRegistry.ISettings): void => {
      settings.autoDiagnose = values.get('autoDiagnose').composite === true;
      settings.highlightLines = values.get('highlightLines').composite !== false;
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
