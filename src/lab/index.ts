/**
 * The JupyterLab extension: a sidebar of the in-place autograd diagnoses of each notebook's kernel,
 * click-to-reveal, and Apply/Undo of the kernel's fixes through the notebook's shared model, from the
 * sidebar, the command palette and the diagnosis panel's buttons (its DOM events).
 */
import { ILayoutRestorer, type JupyterFrontEnd, type JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import type { CodeEditor } from '@jupyterlab/codeeditor';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, type NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import {
  APPLY_EVENT,
  type IApplyDetail,
  type IRevealDetail,
  PROTOCOL_VERSION,
  REVEAL_EVENT,
  UNDO_EVENT
} from '../panel/protocol';
import type { ITextTarget } from './edits';
import { contentsPath } from './files';
import { inplaceMagicIcon } from './icon';
import { type ISettings, NotebookSession } from './session';
import { DiagnosisSidebar } from './sidebar';
import type { ITrans } from './trans';

const PLUGIN_ID = 'inplace-magic:plugin';

export const CommandIDs = {
  showSidebar: 'inplace-magic:show-sidebar',
  applyFix: 'inplace-magic:apply-fix',
  undoFix: 'inplace-magic:undo-fix',
  clear: 'inplace-magic:clear'
} as const;

interface ISharedTextLike {
  getSource(): string;
  updateSource(start: number, end: number, value?: string): void;
}

function isSharedText(value: unknown): value is ISharedTextLike {
  const candidate = value as Partial<ISharedTextLike> | null;
  return (
    !!candidate && typeof candidate.getSource === 'function' && typeof candidate.updateSource === 'function'
  );
}

function editorOf(content: unknown): CodeEditor.IEditor | null {
  const editor = (content as { editor?: CodeEditor.IEditor } | null)?.editor;
  return editor && typeof editor.setCursorPosition === 'function' ? editor : null;
}

/** Opening `.py` files the kernel named, in editors the user sees (never behind their back). */
class Files {
  constructor(
    private docManager: IDocumentManager | null,
    private trans: ITrans
  ) {}

  private async open(
    file: string,
    notebookPath: string
  ): Promise<{ widget: unknown; path: string } | string> {
    const path = contentsPath(file, PageConfig.getOption('serverRoot'), notebookPath);
    if (!this.docManager) {
      return this.trans.__('JupyterLab cannot open files here; edit %1 by hand.', file);
    }
    if (path === null || !path.endsWith('.py')) {
      return this.trans.__('%1 is outside the folder JupyterLab serves; edit it by hand.', file);
    }
    try {
      await this.docManager.services.contents.get(path, { content: false });
    } catch {
      return this.trans.__('%1 does not exist any more; nothing was changed.', path);
    }
    const widget = this.docManager.openOrReveal(path);
    if (!widget) {
      return this.trans.__('JupyterLab could not open %1; nothing was changed.', path);
    }
    await widget.context.ready;
    return { widget, path };
  }

  async target(file: string, notebookPath: string): Promise<ITextTarget | string> {
    const opened = await this.open(file, notebookPath);
    if (typeof opened === 'string') {
      return opened;
    }
    const context = (opened.widget as { context: { model: { sharedModel: unknown } } }).context;
    const shared = context.model.sharedModel;
    if (!isSharedText(shared)) {
      return this.trans.__('%1 did not open as text; nothing was changed.', opened.path);
    }
    return {
      label: opened.path,
      getSource: () => shared.getSource(),
      updateSource: (start, end, text) => shared.updateSource(start, end, text)
    };
  }

  async reveal(file: string, line: number, notebookPath: string): Promise<string | null> {
    const opened = await this.open(file, notebookPath);
    if (typeof opened === 'string') {
      return opened;
    }
    const editor = editorOf((opened.widget as { content?: unknown }).content);
    if (editor) {
      const position = { line: Math.max(0, line - 1), column: 0 };
      editor.setCursorPosition(position);
      editor.revealPosition(position);
    }
    return null;
  }
}

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

  // The diagnosis panel's buttons: claim the events of diagnoses this notebook's kernel issued.
  const panelEvent =
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
  const claimable = (event: Event): [NotebookSession, IApplyDetail] | null => {
    const target = event.target;
    const detail = (event as CustomEvent<IApplyDetail | undefined>).detail;
    if (!(target instanceof Node) || !detail || typeof detail.respond !== 'function') {
      return null;
    }
    const session = sessionOf(tracker.find(panel => panel.node.contains(target)) ?? null);
    if (!session) {
      return null;
    }
    if (detail.protocol !== PROTOCOL_VERSION) {
      event.preventDefault();
      detail.respond({
        applied: false,
        message: trans.__(
          'The panel speaks protocol %1 and this JupyterLab extension %2: install the same inplace_magic version in the kernel and in JupyterLab, then reload the page.',
          String(detail.protocol),
          PROTOCOL_VERSION
        )
      });
      return null;
    }
    // a diagnosis that did not arrive over the comm is left to the kernel's own path
    return session.list.find(detail.diagnosisId) ? [session, detail] : null;
  };
  document.addEventListener(APPLY_EVENT, panelEvent('apply'));
  document.addEventListener(UNDO_EVENT, panelEvent('undo'));
  document.addEventListener(REVEAL_EVENT, event => {
    const target = event.target;
    const detail = (event as CustomEvent<IRevealDetail | undefined>).detail;
    if (!(target instanceof Node) || !detail?.where) {
      return;
    }
    const session = sessionOf(tracker.find(panel => panel.node.contains(target)) ?? null);
    if (session) {
      event.preventDefault();
      void session.reveal(detail.where);
    }
  });

  const notify = (outcome: { applied: boolean; message: string }): void => {
    if (outcome.applied) {
      Notification.success(outcome.message, { autoClose: 5000 });
    } else {
      Notification.warning(outcome.message, { autoClose: 8000 });
    }
  };
  const current = (): NotebookSession | null => sessionOf(tracker.currentWidget);
  const category = trans.__('In-place Magic');
  app.commands.addCommand(CommandIDs.showSidebar, {
    label: trans.__('Show In-place Diagnoses'),
    caption: trans.__('Show the sidebar of in-place autograd diagnoses'),
    icon: inplaceMagicIcon,
    execute: () => app.shell.activateById(sidebar.id)
  });
  app.commands.addCommand(CommandIDs.applyFix, {
    label: trans.__('Apply the Selected In-place Fix'),
    isEnabled: () => current()?.list.current?.status === 'new',
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
  app.commands.addCommand(CommandIDs.clear, {
    label: trans.__('Clear the In-place Diagnoses'),
    execute: () => current()?.list.clear()
  });
  for (const command of Object.values(CommandIDs)) {
    palette?.addItem({ command, category });
  }

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
