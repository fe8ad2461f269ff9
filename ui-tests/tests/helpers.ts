/**
 * Shared steps of the UI tests: open a fixture notebook from ui-tests/notebooks in the test's own
 * server folder, run cells, and find the diagnosis panel by its accessible name.
 */
import type { IJupyterLabPageFixture } from '@jupyterlab/galata';
import { expect, type Locator, type Page } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

import { attachNotebook, type ISharedKernel } from './kernel';

export const NOTEBOOKS = path.resolve(__dirname, '..', 'notebooks');
/** Screenshots kept as artifacts (not compared): uploaded by CI with the test results. */
export const SCREENSHOTS = path.resolve(__dirname, '..', 'test-results', 'screenshots');

export const PANEL_NAME = 'In-place autograd error diagnosis';

/**
 * Upload `ui-tests/notebooks/<name>` into the test's folder and open it with a ready kernel: the
 * worker's `kernel`, reset, where given (tests/kernel.ts); otherwise JupyterLab starts one for it.
 */
export async function openFixture(
  page: IJupyterLabPageFixture,
  tmpPath: string,
  name: string,
  kernel?: ISharedKernel
): Promise<void> {
  await page.contents.uploadFile(path.join(NOTEBOOKS, name), `${tmpPath}/${name}`);
  if (kernel) {
    await attachNotebook(page, kernel, tmpPath, `${tmpPath}/${name}`);
  }
  expect(await page.notebook.openByPath(`${tmpPath}/${name}`)).toBe(true);
  await page.notebook.activate(name);
  await waitForIdleKernel(page);
}

/**
 * The current notebook's kernel is idle (it started and has nothing to run). Read from the session,
 * not the toolbar: a narrow window folds the toolbar's indicator into its overflow menu. Checked
 * every 100 ms, not at every animation frame (Playwright's default): a kernel takes seconds to
 * start, and polling each frame keeps the headless browser painting at 60 frames a second
 * meanwhile, CPU the kernels beside it need.
 */
export async function waitForIdleKernel(page: Page, timeout = 60000): Promise<void> {
  await page.waitForFunction(
    () => {
      const app = (window as any).jupyterapp;
      const widget = app?.shell?.currentWidget;
      return widget?.sessionContext?.session?.kernel?.status === 'idle';
    },
    undefined,
    { timeout, polling: 100 }
  );
}

/** Galata's reload, whose options its fixture type hides behind Playwright's. */
interface IReloadable {
  reload(options: { waitForIsReady: boolean }): Promise<unknown>;
}

/** Reload the page: the notebook comes back (not the Launcher Galata waits for by default). */
export async function reloadNotebook(page: IJupyterLabPageFixture): Promise<void> {
  await (page as unknown as IReloadable).reload({ waitForIsReady: false });
  await page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').first().waitFor();
  await waitForIdleKernel(page);
}

/**
 * Run cells `from`..`to` (inclusive) one after the other, each to completion. Galata's run (select
 * the cell, clear its execution count, Ctrl+Enter), then a wait on the cell's model instead of
 * Galata's, which asks the page every 20 ms for as long as the cell runs (a diagnosis runs for
 * seconds, beside other tests' kernels).
 */
export async function runCells(page: IJupyterLabPageFixture, from: number, to = from): Promise<void> {
  for (let i = from; i <= to; i++) {
    expect(await page.notebook.runCell(i, { inplace: true, wait: false })).toBe(true);
    await executed(page, i);
  }
}

/**
 * Cell `index` of the current notebook has run: its execution count is set again, which JupyterLab
 * does once the kernel's reply and its idle status have both come (what Galata's wait polls for).
 */
async function executed(page: Page, index: number): Promise<void> {
  await page.evaluate(
    i =>
      new Promise<void>(resolve => {
        const model = (window as any).jupyterapp.shell.currentWidget.content.model.cells.get(i);
        const check = (): void => {
          if (model.executionCount !== null) {
            model.stateChanged.disconnect(check);
            resolve();
          }
        };
        model.stateChanged.connect(check);
        check();
      }),
    index
  );
}

/**
 * Add a code cell with `source` at the end of the current notebook, through its model: the test is
 * about what the kernel does with it, and typing it key by key (Galata's addCell) costs the browser
 * seconds of re-highlighting the editor.
 */
export async function addCodeCell(page: Page, source: string): Promise<void> {
  const added = await page.evaluate(text => {
    const model = (window as any).jupyterapp.shell.currentWidget.content.model;
    model.sharedModel.insertCell(model.cells.length, { cell_type: 'code', source: text });
    return model.cells.get(model.cells.length - 1).sharedModel.getSource() as string;
  }, source);
  expect(added).toBe(source);
}

/** What {@link showDiagnosis} leaves: the failing cell's panel, and the sidebar's region. */
export interface IDiagnosed {
  panel: Locator;
  /** Opened before the cells ran when asked for (`sidebar: true`); otherwise still closed. */
  sidebar: Locator;
}

/**
 * The set-up most tests share: open the fixture `name` (on the worker's `kernel` where given),
 * optionally open the sidebar first, run cells 0..`failing` (the last one fails) and wait for the
 * diagnosis panel in the failing cell.
 */
export async function showDiagnosis(
  page: IJupyterLabPageFixture,
  tmpPath: string,
  name: string,
  options: { sidebar?: boolean; failing?: number; kernel?: ISharedKernel } = {}
): Promise<IDiagnosed> {
  const failing = options.failing ?? 2;
  await openFixture(page, tmpPath, name, options.kernel);
  const sidebar = options.sidebar
    ? await openSidebar(page)
    : page.getByRole('region', { name: SIDEBAR_NAME });
  await runCells(page, 0, failing);
  const panel = panelIn(page, failing);
  await expect(panel).toBeVisible();
  return { panel, sidebar };
}

/** The cell at `index` of the active notebook (a role-free locator: cells carry no role). */
export function cell(page: Page, index: number): Locator {
  return page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').nth(index);
}

/** The diagnosis panel(s) in the output of cell `index`. */
export function panelIn(page: Page, index: number): Locator {
  return cell(page, index).getByRole('region', { name: PANEL_NAME });
}

/** Open the panel's tab `name` (Graph, Version timeline, Why, Other fixes…); returns its content. */
export async function openTab(panel: Locator, name: string | RegExp): Promise<Locator> {
  const tab = panel.getByRole('tab', { name });
  if ((await tab.getAttribute('aria-selected')) !== 'true') {
    await tab.click();
  }
  await expect(tab).toHaveAttribute('aria-selected', 'true');
  return panel.getByRole('tabpanel', { name });
}

/** The graph of a panel, its tab opened. */
export async function graphOf(panel: Locator): Promise<Locator> {
  await openTab(panel, 'Graph');
  const graph = panel.getByRole('group', { name: /Dataflow around the overwritten tensor/ });
  await expect(graph).toBeVisible();
  return graph;
}

/** The source of cell `index` as the notebook model holds it. */
export async function cellSource(page: Page, index: number): Promise<string> {
  return page.evaluate(i => {
    const app = (window as any).jupyterapp;
    const nb = app.shell.currentWidget?.content;
    return nb.model.cells.get(i).sharedModel.getSource() as string;
  }, index);
}

/** The error output (ename: evalue) of cell `index`, as text. */
export function errorOutput(page: Page, index: number): Locator {
  return cell(page, index).locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
}

export async function screenshot(target: Locator | Page, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, name);
  await target.screenshot({ path: file });
  return file;
}

export const SIDEBAR_NAME = 'In-place autograd diagnoses';

/** Open the sidebar from its tab in the left area; returns the sidebar region. */
export async function openSidebar(page: Page): Promise<Locator> {
  const sidebar = page.getByRole('region', { name: SIDEBAR_NAME });
  if (!(await sidebar.isVisible())) {
    const tab = page.getByRole('tab', { name: SIDEBAR_NAME });
    await expect(tab, 'the sidebar tab of the inplace_magic JupyterLab extension').toBeVisible({
      timeout: 15000
    });
    await tab.click();
  }
  await expect(sidebar).toBeVisible();
  return sidebar;
}

/** The sidebar entry whose headline matches `headline`. */
export function entry(sidebar: Locator, headline: RegExp | string): Locator {
  return sidebar.getByRole('list', { name: 'Diagnoses' }).getByRole('listitem', { name: headline });
}

/** Index of the active cell of the current notebook. */
export async function activeCellIndex(page: Page): Promise<number> {
  return page.evaluate(
    () => (window as any).jupyterapp.shell.currentWidget.content.activeCellIndex as number
  );
}

/**
 * WCAG contrast ratio of an element's text against what is painted behind it (the nearest
 * ancestor's opaque-enough background; for SVG text, the fill of the shape it sits on).
 */
export async function contrastOf(target: Locator): Promise<number> {
  return target.evaluate(node => {
    const parse = (c: string): number[] => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) {
        return [0, 0, 0, 0];
      }
      const parts = m[1]
        .split(/[ ,/]+/)
        .filter(Boolean)
        .map(Number);
      return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
    };
    const luminance = ([r, g, b]: number[]): number => {
      const lin = (v: number): number => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
      };
      return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    };
    const isSvgText = node instanceof SVGElement;
    const style = getComputedStyle(node as Element);
    const fg = parse(isSvgText ? style.fill : style.color);
    let bg: number[] | null = null;
    if (isSvgText) {
      const shape = (node as Element).closest('g')?.querySelector('rect, ellipse, path');
      if (shape) {
        const fill = parse(getComputedStyle(shape).fill);
        if (fill[3] > 0.5) {
          bg = fill;
        }
      }
    }
    let el: Element | null = node as Element;
    while (!bg && el) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c[3] > 0.5) {
        bg = c;
      }
      el = el.parentElement;
    }
    bg = bg ?? [255, 255, 255, 1];
    const [l1, l2] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    return (l1 + 0.05) / (l2 + 0.05);
  });
}
