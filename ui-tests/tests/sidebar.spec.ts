/**
 * The JupyterLab extension (issue 6) with the panel (issue 5): the sidebar, click-to-reveal,
 * Apply/Undo through the notebook model, stale fixes and kernel restarts. Scenarios 1, 4, 5, 7.
 */
import { expect, test } from '@jupyterlab/galata';

import {
  activeCellIndex,
  cell,
  cellSource,
  entry,
  openFixture,
  openSidebar,
  panelIn,
  runCells,
  screenshot,
  waitForIdleKernel
} from './helpers';

const SKIP = /block\.act.*overwrote.*block\.shortcut/;

test.describe('sidebar', () => {
  test('skip connection: sidebar lists it, reveals cell 1, Apply fixes it, re-run succeeds', async ({
    page,
    tmpPath
  }) => {
    await openFixture(page, tmpPath, 'skip_connection.ipynb');
    const sidebar = await openSidebar(page);
    // the sidebar follows the notebook just opened (the first one of the session)
    await expect(sidebar, 'the sidebar shows the open notebook').toContainText('skip_connection.ipynb');
    await expect(sidebar).toContainText('No diagnoses for this notebook yet');
    await runCells(page, 0, 2);
    await expect(panelIn(page, 2)).toBeVisible();

    const item = entry(sidebar, SKIP);
    await expect(item).toBeVisible();
    await expect(item).toHaveAttribute('data-status', 'new');
    await expect(item).toContainText('new');
    // the kind in the kernel's words (inplace_magic/present/words.py), not the JSON's `version_counter`
    await expect(item.locator('.jp-InplaceMagic-sidebarKind')).toHaveText('Saved tensor overwritten');
    await panelIn(page, 2)
      .getByRole('group', { name: /Dataflow around the overwritten tensor/ })
      .scrollIntoViewIfNeeded();
    await screenshot(page, 'scenario1-skip-connection-panel-and-sidebar.png');

    // the writer and saver lines of cell 1 carry the diagnosis' decorations
    await expect(cell(page, 1).locator('.jp-InplaceMagic-writerLine').first()).toBeVisible();
    await expect(
      cell(page, 1).locator('.jp-InplaceMagic-writerLine', { hasText: 'self.act(h)' })
    ).toHaveCount(1);
    await expect(
      cell(page, 1).locator('.jp-InplaceMagic-saverLine', { hasText: 'self.shortcut(h)' })
    ).toHaveCount(1);

    // clicking the writer's location selects cell 1 (the cell that defines the block)
    await page.notebook.selectCells(2);
    expect(await activeCellIndex(page)).toBe(2);
    await item.getByRole('button', { name: 'cell 2, line 10' }).click();
    await expect.poll(() => activeCellIndex(page)).toBe(1);
    await expect(cell(page, 1)).toHaveClass(/jp-mod-active/);
    await expect(cell(page, 1).locator('.jp-InplaceMagic-revealLine')).toContainText('self.act(h)');
    await screenshot(page, 'scenario1-skip-connection-revealed.png');

    // Apply from the sidebar edits cell 1 through the notebook model
    const before = await cellSource(page, 1);
    await item.getByRole('button', { name: 'Apply fix' }).click();
    await expect(item).toHaveAttribute('data-status', 'applied');
    const after = await cellSource(page, 1);
    expect(after).toContain('self.act = nn.ReLU()');
    expect(after).not.toContain('inplace=True');
    expect(after.replace('nn.ReLU()', 'nn.ReLU(inplace=True)')).toBe(before);
    await expect(item.getByRole('button', { name: 'Undo' })).toBeEnabled();
    await expect(cell(page, 1).locator('.jp-InplaceMagic-writerLine')).toHaveCount(0);

    // re-running cells 1-2 now trains: no error, no panel; the sidebar still says applied
    await runCells(page, 1, 2);
    await expect(cell(page, 2)).toContainText('step done');
    await expect(cell(page, 2)).not.toContainText('modified by an inplace operation');
    await expect(panelIn(page, 2)).toHaveCount(0);
    await expect(item).toHaveAttribute('data-status', 'applied');
    await expect(item).toContainText('applied');
    await screenshot(page, 'scenario1-skip-connection-applied.png');
  });

  test('stale fix: a hand edit of the target cell makes Apply refuse and keeps the edit', async ({
    page,
    tmpPath
  }) => {
    await openFixture(page, tmpPath, 'skip_connection.ipynb');
    const sidebar = await openSidebar(page);
    await runCells(page, 0, 2);
    const panel = panelIn(page, 2);
    await expect(panel).toBeVisible();
    const item = entry(sidebar, SKIP);
    await expect(item).toHaveAttribute('data-status', 'new');

    // the user edits cell 1 by hand (typed in its editor)
    await cell(page, 1).locator('.cm-content').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('\n# my own change');
    await page.keyboard.press('Escape');
    const edited = await cellSource(page, 1);
    expect(edited).toContain('# my own change');

    // Apply from the panel: the extension refuses with a clear message
    await panel.getByRole('button', { name: 'Apply' }).first().click();
    const status = panel.getByRole('status').first();
    await expect(status).toContainText('refused');
    await expect(status).toContainText(/changed since the diagnosis/);
    expect(await cellSource(page, 1)).toBe(edited);

    // the sidebar says why and does not offer Apply
    await expect(item).toHaveAttribute('data-status', 'stale');
    await expect(item).toContainText(/changed since the diagnosis/);
    await expect(item.getByRole('button', { name: 'Apply fix' })).toBeDisabled();
    expect(await cellSource(page, 1)).toBe(edited);
  });

  test('Undo after Apply restores the exact previous source (panel, sidebar, editor undo)', async ({
    page,
    tmpPath
  }) => {
    await openFixture(page, tmpPath, 'skip_connection.ipynb');
    const sidebar = await openSidebar(page);
    await runCells(page, 0, 2);
    const panel = panelIn(page, 2);
    await expect(panel).toBeVisible();
    const item = entry(sidebar, SKIP);
    await expect(item).toHaveAttribute('data-status', 'new');
    const original = await cellSource(page, 1);

    // 1. the panel's Apply and Undo (taken by the extension)
    const fix = panel.locator('.jp-InplaceMagic-fix').first();
    await fix.getByRole('button', { name: 'Apply' }).click();
    await expect(fix.getByRole('status')).toContainText('JupyterLab extension');
    await expect.poll(() => cellSource(page, 1)).not.toBe(original);
    expect(await cellSource(page, 1)).toContain('nn.ReLU()');
    await expect(item).toHaveAttribute('data-status', 'applied');
    await fix.getByRole('button', { name: 'Undo' }).click();
    await expect.poll(() => cellSource(page, 1)).toBe(original);
    await expect(item).toHaveAttribute('data-status', 'new');

    // 2. the sidebar's Apply and Undo
    await item.getByRole('button', { name: 'Apply fix' }).click();
    await expect(item).toHaveAttribute('data-status', 'applied');
    expect(await cellSource(page, 1)).not.toBe(original);
    await item.getByRole('button', { name: 'Undo' }).click();
    await expect(item).toHaveAttribute('data-status', 'new');
    expect(await cellSource(page, 1)).toBe(original);

    // 3. the edit is one step of the cell editor's own undo history
    await item.getByRole('button', { name: 'Apply fix' }).click();
    await expect(item).toHaveAttribute('data-status', 'applied');
    await cell(page, 1).locator('.cm-content').click();
    await page.keyboard.press('Control+z');
    await expect.poll(() => cellSource(page, 1)).toBe(original);
  });
});

test.describe('kernel restart', () => {
  // Galata's mocked kernels route answers a restart with 201 and JupyterLab then throws
  test.use({ kernels: null });

  test('after a restart the old diagnosis is not offered; the new one is', async ({ page, tmpPath }) => {
    await openFixture(page, tmpPath, 'restart.ipynb');
    const sidebar = await openSidebar(page);
    await runCells(page, 0, 2);
    const oldPanel = panelIn(page, 2);
    await expect(oldPanel).toBeVisible();
    const old = entry(sidebar, /`act`.*overwrote.*`shortcut`/);
    await expect(old).toHaveAttribute('data-status', 'new');
    const blockSource = await cellSource(page, 1);

    await page.menu.clickMenuItem('Kernel>Restart Kernel…');
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm Kernel Restart' }).click();
    await waitForIdleKernel(page);

    await expect(old).toHaveAttribute('data-status', 'stale');
    await expect(old).toContainText(/kernel restarted/i);
    await expect(old.getByRole('button', { name: 'Apply fix' })).toBeDisabled();

    // a new diagnosis from the new kernel
    await runCells(page, 0);
    await runCells(page, 3);
    await expect(panelIn(page, 3)).toBeVisible();
    const fresh = entry(sidebar, /y\.add_\(1\).*overwrote/);
    await expect(fresh).toHaveAttribute('data-status', 'new');
    await expect(fresh.getByRole('button', { name: 'Apply fix' })).toBeEnabled();
    await expect(old).toHaveAttribute('data-status', 'stale');
    await expect(old.getByRole('button', { name: 'Apply fix' })).toBeDisabled();

    // the old panel's Apply, still on the page, is refused and edits nothing
    const oldApply = oldPanel.getByRole('button', { name: 'Apply' }).first();
    await expect(oldApply).toBeEnabled();
    await oldApply.click();
    await expect(oldPanel.getByRole('status').first()).toContainText(/refused.*kernel restarted/i);
    expect(await cellSource(page, 1)).toBe(blockSource);
  });
});
