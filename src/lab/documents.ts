/**
 * Opening the `.py` files the kernel named, in editors the user sees (never behind their back), as
 * fix targets (their shared model) and to reveal a line.
 */
import type { CodeEditor } from '@jupyterlab/codeeditor';
import { PageConfig } from '@jupyterlab/coreutils';
import type { IDocumentManager } from '@jupyterlab/docmanager';

import type { ITextTarget } from './edits';
import { contentsPath } from './files';
import type { ITrans } from './trans';

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
export class Files {
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
