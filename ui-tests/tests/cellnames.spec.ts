/**
 * Cells named the way JupyterLab shows them (issue 14, item 2): "cell [2]" is the In[] prompt beside
 * the cell, in the panel, the sidebar and the text report alike; after the cell is re-run the names
 * follow its new prompt, and after it is moved a click still jumps to it (by its id).
 */
import { expect } from '@jupyterlab/galata';
import type { Page } from '@playwright/test';

import { activeCellIndex, cell, entry, runCells, showDiagnosis } from './helpers';
import { test } from './kernel';

const SKIP = /block\.act.*overwrote.*block\.shortcut/;

/** The text/plain report among cell `index`'s outputs (what nbconvert and a terminal show). */
async function textReport(page: Page, index: number): Promise<string> {
  return page.evaluate(i => {
    const nb = (window as any).jupyterapp.shell.currentWidget.content;
    const outputs = nb.model.cells.get(i).outputs;
    for (let k = 0; k < outputs.length; k++) {
      const data = outputs.get(k).toJSON().data;
      if (data && data['application/vnd.inplace-magic.diagnosis+json']) {
        return String(data['text/plain']);
      }
    }
    return '';
  }, index);
}

/** The In[] prompt JupyterLab shows beside cell `index`. */
async function prompt(page: Page, index: number): Promise<string> {
  return (await cell(page, index).locator('.jp-InputPrompt').textContent())?.trim() ?? '';
}

test('cells are named by their prompt everywhere, and the names follow re-runs and moves', async ({
  page,
  tmpPath,
  kernel
}) => {
  const { panel, sidebar } = await showDiagnosis(page, tmpPath, 'skip_connection.ipynb', {
    sidebar: true,
    kernel
  });
  expect(await prompt(page, 1)).toBe('[2]:');
  const item = entry(sidebar, SKIP);

  // one name for the model cell, the one its prompt shows: panel, sidebar, text report
  await expect(panel.getByRole('heading')).toContainText('block.act at cell [2], line 10');
  await expect(panel.getByRole('button', { name: 'cell [2], line 10' }).first()).toBeVisible();
  await expect(item.getByRole('button', { name: 'cell [2], line 10' })).toBeVisible();
  const report = await textReport(page, 2);
  expect(report).toContain('cell [2], line 10');
  expect(report).not.toMatch(/cell \d/);
  await expect(panel.locator('.jp-InplaceMagic-diffTarget').first()).toHaveText('cell [2]');

  // re-run the model cell: its prompt is [4] now, and so is every name of it
  await runCells(page, 1);
  expect(await prompt(page, 1)).toBe('[4]:');
  await expect(panel.getByRole('heading')).toContainText('block.act at cell [4], line 10');
  await expect(panel.getByRole('button', { name: 'cell [4], line 10' }).first()).toBeVisible();
  await expect(panel.locator('.jp-InplaceMagic-diffTarget').first()).toHaveText('cell [4]');
  await expect(item.getByRole('button', { name: 'cell [4], line 10' })).toBeVisible();
  await expect(item).toContainText('block.act at cell [4], line 10');
  await expect(panel.getByText(/cell \[2\]/)).toHaveCount(0);

  // move the model cell to the top: a click on its location still finds it, by its id
  await page.notebook.selectCells(1);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+Shift+ArrowUp');
  await expect.poll(() => prompt(page, 0)).toBe('[4]:');
  await page.notebook.selectCells(2);
  await item.getByRole('button', { name: 'cell [4], line 10' }).click();
  await expect.poll(() => activeCellIndex(page)).toBe(0);
  await expect(cell(page, 0).locator('.jp-InplaceMagic-revealLine')).toContainText('self.act(h)');
  // and the panel's own button jumps there too
  await page.notebook.selectCells(2);
  await panel.getByRole('button', { name: 'cell [4], line 10' }).first().click();
  await expect.poll(() => activeCellIndex(page)).toBe(0);
});
