/**
 * Notebook 7 (issue 14, item 5): the same server serves it (/notebooks/...). The panel renders there,
 * the sidebar is reachable from the View menu, whose item counts the new diagnoses, and from its
 * shortcut (Notebook 7's left side area), and Apply goes through the extension. Galata drives it
 * with `appPath: ''` and its own ready check (Notebook 7 has no Launcher); its notebook helpers
 * assume JupyterLab's tabs, so cells run through the app's commands (see ui-tests/README.md).
 */
import { expect } from '@jupyterlab/galata';
import type { Page } from '@playwright/test';
import * as path from 'path';

import { NOTEBOOKS, PANEL_NAME, screenshot, SIDEBAR_NAME, waitForIdleKernel } from './helpers';
import { test } from './kernel';

test.use({
  // its page opens the notebook itself: there is no JupyterLab page to reset the worker kernel from
  shareKernel: false,
  autoGoto: false,
  appPath: '',
  // Notebook 7 has no Launcher to wait for: its main panel is the page
  waitForApplication: async ({}, use) => {
    await use(async page => {
      await page.waitForSelector('#main-panel');
    });
  }
});

/** Run cells `from`..`to` of Notebook 7's notebook, each to completion. */
async function run(page: Page, from: number, to = from): Promise<void> {
  for (let i = from; i <= to; i++) {
    await page.evaluate(async index => {
      const app = (window as any).jupyterapp;
      app.shell.currentWidget.content.activeCellIndex = index;
      await app.commands.execute('notebook:run-cell');
    }, i);
    await waitForIdleKernel(page);
  }
}

async function source(page: Page, index: number): Promise<string> {
  return page.evaluate(
    i => (window as any).jupyterapp.shell.currentWidget.content.model.cells.get(i).sharedModel.getSource(),
    index
  );
}

test('Notebook 7: the panel renders, the sidebar is reachable, Apply goes through the extension', async ({
  page,
  tmpPath
}) => {
  const name = 'skip_connection.ipynb';
  await page.contents.uploadFile(path.join(NOTEBOOKS, name), `${tmpPath}/${name}`);
  await page.goto(`notebooks/${tmpPath}/${name}`);
  expect(page.url()).toContain('/notebooks/'); // Notebook 7, not JupyterLab
  await expect(page.locator('#jp-NotebookLogo, .jp-NotebookKernelLogo').first()).toBeAttached();
  await waitForIdleKernel(page);
  await run(page, 0, 2);

  const cells = page.locator('.jp-Notebook .jp-Cell');
  const panel = cells.nth(2).getByRole('region', { name: PANEL_NAME });
  await expect(panel).toBeVisible();
  await expect(panel.getByRole('heading')).toContainText('block.act at cell [2], line 10');
  await expect(cells.nth(2).getByText(/3 frames in torch \(library code\) folded/)).toBeVisible();

  // the sidebar: in the left side area, from the View menu (and Alt+Shift+I); Notebook 7's side
  // panel has no tab bar to badge, so the menu's item counts the diagnoses not seen yet
  const sidebar = page.getByRole('region', { name: SIDEBAR_NAME });
  await expect(sidebar).toBeHidden();
  await page.getByRole('menuitem', { name: 'View' }).click();
  const show = page.getByRole('menuitem', { name: /^Show In-place Diagnoses/ });
  await expect(show).toContainText('Show In-place Diagnoses (1 new)');
  await show.click();
  await expect(sidebar).toBeVisible();
  await page.getByRole('menuitem', { name: 'View' }).click();
  await expect(show).toBeVisible();
  await expect(show).not.toContainText('new');
  await page.keyboard.press('Escape');
  const item = sidebar.getByRole('listitem', { name: /block\.act.*overwrote.*block\.shortcut/ });
  await expect(item).toHaveAttribute('data-status', 'new');
  await cells.nth(2).locator('.jp-InplaceMagic-foldedFrames').scrollIntoViewIfNeeded();
  // the wheel over the notebook (the mouse was left on the menu bar)
  await page.mouse.move(800, 500);
  await page.mouse.wheel(0, 250);
  await expect(panel.getByRole('heading')).toBeInViewport();
  await screenshot(page, 'notebook7-panel-and-sidebar.png');

  // Apply from the panel: the extension edits the cell, shows the change there, the sidebar follows
  const original = await source(page, 1);
  await panel.getByRole('button', { name: 'Apply' }).first().click();
  await expect(panel.getByRole('status').first()).toHaveText(
    'Applied to cell [2]. Then re-run cell [2] and cell [3].'
  );
  await expect.poll(() => source(page, 1)).toContain('self.act = nn.ReLU()');
  await expect(cells.nth(1).getByRole('group', { name: /inplace_magic applied/ })).toBeVisible();
  await expect(item).toHaveAttribute('data-status', 'applied');
  await item.getByRole('button', { name: 'Undo' }).click();
  await expect.poll(() => source(page, 1)).toBe(original);

  // its shortcut shows it again after the side panel was collapsed
  await page.getByRole('button', { name: 'Collapse left side panel' }).click();
  await expect(sidebar).toBeHidden();
  await page.keyboard.press('Escape');
  await page.keyboard.press('Alt+Shift+I');
  await expect(sidebar).toBeVisible();
});
