/**
 * The JupyterLab extension with the panel: the sidebar, click-to-reveal, Apply/Undo through the
 * notebook model, statuses that follow the cells' source (the editor's Ctrl+Z included), one entry per
 * failing cell, dismissing, the icon's badge, a page reload, kernel restarts and keyboard shortcuts.
 */
import { expect, galata } from '@jupyterlab/galata';
import type { Locator, Page } from '@playwright/test';

import {
  activeCellIndex,
  cell,
  cellSource,
  entry,
  graphOf,
  openFixture,
  openSidebar,
  panelIn,
  reloadNotebook,
  runCells,
  screenshot,
  showDiagnosis,
  SIDEBAR_NAME,
  waitForIdleKernel
} from './helpers';
import { test } from './kernel';

const SKIP = /block\.act.*overwrote.*block\.shortcut/;

/** What makes a button look disabled here: its opacity and cursor. */
async function looks(button: Locator): Promise<{ opacity: number; cursor: string }> {
  return button.evaluate(node => {
    const style = getComputedStyle(node);
    return { opacity: Number(style.opacity), cursor: style.cursor };
  });
}

/** The sidebar's tab in the left area. */
function sidebarTab(page: Page): Locator {
  return page.getByRole('tab', { name: SIDEBAR_NAME });
}

test.describe('sidebar', () => {
  test('skip connection: listed, reveals cell 1, Apply fixes it, re-run succeeds, Undo still works', async ({
    page,
    tmpPath,
    kernel
  }) => {
    await openFixture(page, tmpPath, 'skip_connection.ipynb', kernel);
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
    await graphOf(panelIn(page, 2));
    await screenshot(page, 'scenario1-skip-connection-panel-and-sidebar.png');

    // the writer and saver lines of cell 1 carry the diagnosis' decorations
    await expect(cell(page, 1).locator('.jp-InplaceMagic-writerLine').first()).toBeVisible();
    await expect(
      cell(page, 1).locator('.jp-InplaceMagic-writerLine', { hasText: 'self.act(h)' })
    ).toHaveCount(1);
    await expect(
      cell(page, 1).locator('.jp-InplaceMagic-saverLine', { hasText: 'self.shortcut(h)' })
    ).toHaveCount(1);

    // clicking the writer's location selects cell 1 (the cell that defines the block, In[2])
    await page.notebook.selectCells(2);
    expect(await activeCellIndex(page)).toBe(2);
    await item.getByRole('button', { name: 'cell [2], line 10' }).click();
    await expect.poll(() => activeCellIndex(page)).toBe(1);
    await expect(cell(page, 1)).toHaveClass(/jp-mod-active/);
    await expect(cell(page, 1).locator('.jp-InplaceMagic-revealLine')).toContainText('self.act(h)');

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

    // the fixed cell runs again (In[4] now): the panel still offers Undo, and names it cell [4]
    await runCells(page, 1);
    const panelFix = panelIn(page, 2).locator('.jp-InplaceMagic-fix').first();
    await expect(panelFix.getByRole('button', { name: 'Undo' })).toBeEnabled();
    await expect(panelFix.locator('.jp-InplaceMagic-diffTarget')).toHaveText('cell [4]');

    // re-running the failing cell now trains: no error, no panel; the sidebar still says applied
    await runCells(page, 2);
    await expect(cell(page, 2)).toContainText('step done');
    await expect(cell(page, 2)).not.toContainText('modified by an inplace operation');
    await expect(panelIn(page, 2)).toHaveCount(0);
    await expect(item).toHaveAttribute('data-status', 'applied');
    await screenshot(page, 'scenario1-skip-connection-applied.png');

    // Undo stays available after the fixed cells ran again
    const undo = item.getByRole('button', { name: 'Undo' });
    await expect(undo).toBeEnabled();
    await undo.click();
    await expect.poll(() => cellSource(page, 1)).toBe(before);
    await expect(item).toHaveAttribute('data-status', 'new');
  });

  test('stale fix: a hand edit of the target cell disables Apply (it looks disabled) and keeps the edit', async ({
    page,
    tmpPath,
    kernel
  }) => {
    const { panel, sidebar } = await showDiagnosis(page, tmpPath, 'skip_connection.ipynb', {
      sidebar: true,
      kernel
    });
    const item = entry(sidebar, SKIP);
    await expect(item).toHaveAttribute('data-status', 'new');
    const enabled = await looks(item.getByRole('button', { name: 'Apply fix' }));

    // the user edits cell 1 by hand (typed in its editor)
    await cell(page, 1).locator('.cm-content').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('\n# my own change');
    await page.keyboard.press('Escape');
    const edited = await cellSource(page, 1);
    expect(edited).toContain('# my own change');

    // the sidebar says why and does not offer Apply; the button looks disabled
    await expect(item).toHaveAttribute('data-status', 'stale');
    await expect(item).toContainText(/changed since the diagnosis/);
    const apply = item.getByRole('button', { name: 'Apply fix' });
    await expect(apply).toBeDisabled();
    const disabled = await looks(apply);
    expect(disabled.opacity).toBeLessThan(enabled.opacity * 0.7);
    expect(enabled.cursor).not.toBe('not-allowed');
    expect(disabled.cursor).toBe('not-allowed');

    // the panel knows it too: its Apply is disabled and says why
    const panelApply = panel.getByRole('button', { name: 'Apply' }).first();
    await expect(panelApply).toBeDisabled();
    await expect(panel.getByRole('status').first()).toContainText(/changed since the diagnosis/);
    expect(await cellSource(page, 1)).toBe(edited);
  });

  test('Undo after Apply restores the source; the editor’s Ctrl+Z turns "applied" back into "new"', async ({
    page,
    tmpPath,
    kernel
  }) => {
    const { panel, sidebar } = await showDiagnosis(page, tmpPath, 'skip_connection.ipynb', {
      sidebar: true,
      kernel
    });
    const item = entry(sidebar, SKIP);
    await expect(item).toHaveAttribute('data-status', 'new');
    const original = await cellSource(page, 1);

    // 1. the panel's Apply and Undo (taken by the extension)
    const fix = panel.locator('.jp-InplaceMagic-fix').first();
    await fix.getByRole('button', { name: 'Apply' }).click();
    await expect(fix.getByRole('status')).toHaveText(
      'Applied to cell [2]. Then re-run cell [2] and cell [3].'
    );
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

    // 3. the edit is one step of the cell editor's own undo history, and the status follows it
    await item.getByRole('button', { name: 'Apply fix' }).click();
    await expect(item).toHaveAttribute('data-status', 'applied');
    await expect(fix.getByRole('button', { name: 'Undo' })).toBeEnabled();
    await cell(page, 1).locator('.cm-content').click();
    await page.keyboard.press('Control+z');
    await expect.poll(() => cellSource(page, 1)).toBe(original);
    await expect(item).toHaveAttribute('data-status', 'new');
    await expect(item.getByRole('button', { name: 'Apply fix' })).toBeEnabled();
    await expect(fix.getByRole('button', { name: 'Apply' })).toBeEnabled();
    await expect(fix.getByRole('button', { name: 'Undo' })).toBeDisabled();
    // and redo brings "applied" back
    await page.keyboard.press('Control+Shift+z');
    await expect(item).toHaveAttribute('data-status', 'applied');
  });

  test('after Apply the changed cell is scrolled to, flashes, and shows the fix as a diff to accept or reject', async ({
    page,
    tmpPath,
    kernel
  }) => {
    const { panel, sidebar } = await showDiagnosis(page, tmpPath, 'skip_connection.ipynb', {
      sidebar: true,
      kernel
    });
    const item = entry(sidebar, SKIP);
    const original = await cellSource(page, 1);
    // the model cell is off screen: the panel is at the bottom of a long output
    await panel.getByRole('button', { name: 'Apply' }).first().scrollIntoViewIfNeeded();
    await expect(cell(page, 1).locator('.cm-content')).not.toBeInViewport();

    await panel.getByRole('button', { name: 'Apply' }).first().click();
    const review = cell(page, 1).getByRole('group', { name: /inplace_magic applied/ });
    await expect(review).toBeInViewport();
    await expect(cell(page, 1)).toHaveClass(/jp-mod-active/);
    const added = cell(page, 1).locator('.jp-InplaceMagic-addedLine');
    await expect(added).toHaveText('        self.act = nn.ReLU()');
    await expect(added).toHaveClass(/jp-InplaceMagic-flash/);
    await expect(cell(page, 1).locator('.jp-InplaceMagic-removedLine')).toHaveText(
      '        self.act = nn.ReLU(inplace=True)'
    );
    await screenshot(page, 'apply-review-in-cell.png');

    // Reject undoes the fix
    await review.getByRole('button', { name: 'Reject' }).click();
    await expect.poll(() => cellSource(page, 1)).toBe(original);
    await expect(item).toHaveAttribute('data-status', 'new');
    await expect(review).toHaveCount(0);

    // Accept keeps it and clears the marks
    await item.getByRole('button', { name: 'Apply fix' }).click();
    await expect(review).toBeVisible();
    await review.getByRole('button', { name: 'Accept' }).click();
    await expect(review).toHaveCount(0);
    await expect(cell(page, 1).locator('.jp-InplaceMagic-addedLine')).toHaveCount(0);
    expect(await cellSource(page, 1)).toContain('nn.ReLU()');
    await expect(item).toHaveAttribute('data-status', 'applied');
  });

  test('one entry per failing cell, each dismissable; a page reload asks the kernel again and Apply works', async ({
    page,
    tmpPath,
    kernel
  }) => {
    await openFixture(page, tmpPath, 'restart.ipynb', kernel);
    const sidebar = await openSidebar(page);
    await runCells(page, 0, 3);
    const block = entry(sidebar, /act.*overwrote.*shortcut/);
    const sigmoid = entry(sidebar, /y\.add_\(1\).*overwrote/);
    await expect(block).toBeVisible();
    await expect(sigmoid).toBeVisible();
    const first = await block.getAttribute('data-diagnosis-id');

    // re-running the failing cell replaces its entry
    await runCells(page, 2);
    await expect(panelIn(page, 2)).toBeVisible();
    await expect(block).not.toHaveAttribute('data-diagnosis-id', first ?? '');
    await expect(sidebar.getByRole('listitem')).toHaveCount(2);

    // dismissed: gone from the list, and the kernel leaves it out when asked again
    await sigmoid.getByRole('button', { name: 'Dismiss' }).click();
    await expect(sigmoid).toHaveCount(0);
    await expect(sidebar.getByRole('listitem')).toHaveCount(1);

    await page.notebook.save(); // the outputs, the panel's among them, are the notebook's
    await reloadNotebook(page);
    const reloaded = await openSidebar(page);
    const again = entry(reloaded, /act.*overwrote.*shortcut/);
    await expect(again).toHaveAttribute('data-status', 'new');
    await expect(reloaded.getByRole('listitem')).toHaveCount(1);

    // the panel came back with the page, and its Apply goes through the extension again (the
    // widget's model is asked of the kernel again: under make test's parallel jobs that took more
    // than the default 30 s once, on a loaded machine)
    const panel = panelIn(page, 2);
    await expect(panel).toBeVisible({ timeout: 60_000 });
    const original = await cellSource(page, 1);
    const fix = panel.locator('.jp-InplaceMagic-fix').first();
    await fix.getByRole('button', { name: 'Apply' }).click();
    await expect(fix.getByRole('status')).toContainText('Applied to cell [2]');
    await expect(fix.getByRole('status')).not.toContainText('No JupyterLab extension');
    await expect.poll(() => cellSource(page, 1)).not.toBe(original);
    await expect(again).toHaveAttribute('data-status', 'applied');
    // and Undo, after a second reload that forgot how it was applied, reads it from the cell
    await page.notebook.save();
    await reloadNotebook(page);
    const third = entry(await openSidebar(page), /act.*overwrote.*shortcut/);
    await expect(third).toHaveAttribute('data-status', 'applied');
    await third.getByRole('button', { name: 'Undo' }).click();
    await expect.poll(() => cellSource(page, 1)).toBe(original);
    await expect(third).toHaveAttribute('data-status', 'new');
  });

  test('the icon counts diagnoses that arrived while the sidebar was closed', async ({
    page,
    tmpPath,
    kernel
  }) => {
    await openFixture(page, tmpPath, 'skip_connection.ipynb', kernel);
    const tab = sidebarTab(page);
    await expect(tab).not.toHaveAttribute('data-unseen');
    await runCells(page, 0, 2);
    await expect(panelIn(page, 2)).toBeVisible();
    await expect(tab).toHaveAttribute('data-unseen', '1');
    await expect(tab).toHaveAttribute('title', /1 new/);
    // the count is drawn on the icon, and left out of the tab's name (its title says it)
    const badge = await tab.evaluate(node => getComputedStyle(node, '::after').content);
    expect(badge).toBe('"1" / ""');
    await screenshot(page, 'sidebar-badge.png');
    await tab.click();
    await expect(page.getByRole('region', { name: SIDEBAR_NAME })).toBeVisible();
    await expect(tab).not.toHaveAttribute('data-unseen');
  });

  test('keyboard shortcuts: show the sidebar, apply, undo, dismiss', async ({ page, tmpPath, kernel }) => {
    const { sidebar } = await showDiagnosis(page, tmpPath, 'skip_connection.ipynb', { kernel });
    await expect(sidebar).toBeHidden();
    await page.keyboard.press('Escape'); // command mode
    await page.keyboard.press('Alt+Shift+I');
    await expect(sidebar).toBeVisible();
    const item = entry(sidebar, SKIP);
    const original = await cellSource(page, 1);

    await page.notebook.selectCells(2);
    await page.keyboard.press('Alt+Shift+A');
    await expect(item).toHaveAttribute('data-status', 'applied');
    expect(await cellSource(page, 1)).toContain('nn.ReLU()');
    await page.keyboard.press('Escape');
    await page.keyboard.press('Alt+Shift+U');
    await expect.poll(() => cellSource(page, 1)).toBe(original);
    await expect(item).toHaveAttribute('data-status', 'new');
    await page.keyboard.press('Alt+Shift+D');
    await expect(item).toHaveCount(0);
  });
});

test.describe('the sidebar opens itself when asked to', () => {
  test.use({
    mockSettings: { ...galata.DEFAULT_SETTINGS, 'inplace-magic:plugin': { autoOpen: true } }
  });

  test('autoOpen: a new diagnosis opens the sidebar', async ({ page, tmpPath, kernel }) => {
    await openFixture(page, tmpPath, 'skip_connection.ipynb', kernel);
    const sidebar = page.getByRole('region', { name: SIDEBAR_NAME });
    await expect(sidebar).toBeHidden();
    await runCells(page, 0, 2);
    await expect(sidebar).toBeVisible();
    await expect(entry(sidebar, SKIP)).toHaveAttribute('data-status', 'new');
  });
});

test.describe('kernel restart', () => {
  // a kernel of its own: its restart is the subject. Galata's mocked kernels route answers a restart
  // with 201 and JupyterLab then throws
  test.use({ kernels: null, shareKernel: false });

  test('after a restart the old diagnosis is not offered; the new one is', async ({ page, tmpPath }) => {
    const { panel: oldPanel, sidebar } = await showDiagnosis(page, tmpPath, 'restart.ipynb', {
      sidebar: true
    });
    const old = entry(sidebar, /act.*overwrote.*shortcut/);
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

    // the old panel, still on the page, says so and offers nothing
    const oldApply = oldPanel.getByRole('button', { name: 'Apply' }).first();
    await expect(oldApply).toBeDisabled();
    await expect(oldPanel.getByRole('status').first()).toContainText(/kernel restarted/i);
    expect(await cellSource(page, 1)).toBe(blockSource);
  });
});
