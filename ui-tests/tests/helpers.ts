/**
 * Shared steps of the UI tests: open a fixture notebook from ui-tests/notebooks in the test's own
 * server folder, run cells, and find the diagnosis panel by its accessible name.
 */
import type { IJupyterLabPageFixture } from '@jupyterlab/galata';
import { expect, type Locator, type Page } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

export const NOTEBOOKS = path.resolve(__dirname, '..', 'notebooks');
/** Screenshots kept as artifacts (not compared): uploaded by CI with the test results. */
export const SCREENSHOTS = path.resolve(__dirname, '..', 'test-results', 'screenshots');

export const PANEL_NAME = 'In-place autograd error diagnosis';

/** Upload `ui-tests/notebooks/<name>` into the test's folder and open it with a ready kernel. */
export async function openFixture(
  page: IJupyterLabPageFixture,
  tmpPath: string,
  name: string
): Promise<void> {
  await page.contents.uploadFile(path.join(NOTEBOOKS, name), `${tmpPath}/${name}`);
  expect(await page.notebook.openByPath(`${tmpPath}/${name}`)).toBe(true);
  await page.notebook.activate(name);
  await waitForIdleKernel(page);
}

/** The kernel status in the notebook toolbar says idle (the kernel started and has nothing to run). */
export async function waitForIdleKernel(page: Page, timeout = 60000): Promise<void> {
  await expect(
    page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator')
  ).toHaveAttribute('data-status', 'idle', { timeout });
}

/** Run cells `from`..`to` (inclusive) one after the other, each to completion. */
export async function runCells(page: IJupyterLabPageFixture, from: number, to = from): Promise<void> {
  for (let i = from; i <= to; i++) {
    expect(await page.notebook.runCell(i, { inplace: true })).toBe(true);
  }
}

/** The cell at `index` of the active notebook (a role-free locator: cells carry no role). */
export function cell(page: Page, index: number): Locator {
  return page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').nth(index);
}

/** The diagnosis panel(s) in the output of cell `index`. */
export function panelIn(page: Page, index: number): Locator {
  return cell(page, index).getByRole('region', { name: PANEL_NAME });
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
