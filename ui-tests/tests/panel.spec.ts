/**
 * The diagnosis panel (issue 5) and the magic in a real JupyterLab: scenarios 1 (panel part), 2, 3, 6,
 * each also checking what the sidebar (issue 6) shows for it.
 */
import { expect, test } from '@jupyterlab/galata';

import { cell, entry, openFixture, openSidebar, panelIn, runCells, screenshot } from './helpers';

test.describe('diagnosis panel', () => {
  test('cross-cell skip connection: the panel shows writer, saver and merge', async ({ page, tmpPath }) => {
    await openFixture(page, tmpPath, 'skip_connection.ipynb');
    await runCells(page, 0, 2);

    const panel = panelIn(page, 2);
    await expect(panel).toBeVisible();
    await expect(panel.getByRole('heading')).toContainText('block.act');
    await expect(panel.getByRole('heading')).toContainText('block.shortcut');

    const graph = panel.getByRole('group', { name: /Dataflow around the overwritten tensor/ });
    await expect(graph).toBeVisible();
    const writer = graph.getByRole('button', { name: /^in-place writer\b.*relu_ in block\.act\b/ });
    const saver = graph.getByRole('button', { name: /^saved it for backward\b.*in block\.shortcut\b/ });
    const merge = graph.getByRole('button', { name: /^merge: the branches meet here\b.*in block\b/ });
    for (const [node, role] of [
      [writer, 'writer'],
      [saver, 'saver'],
      [merge, 'merge']
    ] as const) {
      await expect(node).toBeVisible();
      await expect(node).toHaveClass(new RegExp(`jp-InplaceMagic-node--${role}`));
    }
    // the highlighted roles are drawn differently from a plain op
    const fill = (l: typeof writer) => l.locator('rect').evaluate(r => getComputedStyle(r).stroke);
    const plain = graph.locator('.jp-InplaceMagic-node:not([class*="--"])').first();
    if (await plain.count()) {
      expect(await fill(writer)).not.toBe(await fill(plain));
    }

    // the best fix: out-of-place ReLU, with a diff on cell 1 and an Apply button
    const fix = panel.getByRole('region', { name: /Changes to cell/ }).first();
    await expect(fix).toContainText('nn.ReLU(inplace=True)');
    await expect(fix).toContainText('nn.ReLU()');
    await expect(panel.getByRole('button', { name: 'Apply' }).first()).toBeEnabled();

    // the training step did not run: the original error is still the cell's error
    await expect(cell(page, 2)).toContainText('modified by an inplace operation');
    await graph.scrollIntoViewIfNeeded();
    await screenshot(page, 'scenario1-skip-connection-panel.png');
  });

  test('GAN ordering: optimizer.step() is the writer, the fix changes training semantics', async ({
    page,
    tmpPath
  }) => {
    await openFixture(page, tmpPath, 'gan.ipynb');
    await runCells(page, 0, 2);

    const panel = panelIn(page, 2);
    await expect(panel).toBeVisible();
    await expect(panel.getByRole('heading')).toContainText('opt_d.step()');
    await expect(panel.getByText('Updated in place by')).toBeVisible();
    const graph = panel.getByRole('group', { name: /Dataflow around the overwritten tensor/ });
    await expect(
      graph.getByRole('button', { name: /optimizer step \(in-place writer\)/ }).first()
    ).toBeVisible();
    const best = panel.locator('details.jp-InplaceMagic-fixCard').first();
    await expect(best.locator('summary')).toContainText('changes the training semantics');

    // the sidebar says so too, beside its Apply button
    const item = entry(await openSidebar(page), /opt_d\.step\(\)/);
    await expect(item).toContainText('changes the training semantics');
    await expect(item.getByRole('button', { name: 'Apply fix' })).toBeEnabled();
  });

  test('a shape mismatch in a residual add: no panel, the original traceback only', async ({
    page,
    tmpPath
  }) => {
    await openFixture(page, tmpPath, 'shape_mismatch.ipynb');
    await runCells(page, 0, 2);

    await expect(cell(page, 2)).toContainText('The size of tensor a (6) must match the size of tensor b (8)');
    await expect(cell(page, 2).locator('.jp-OutputArea-output')).toHaveCount(1);
    await expect(page.getByRole('region', { name: 'In-place autograd error diagnosis' })).toHaveCount(0);
    await expect(cell(page, 2)).toContainText('Traceback');
    await expect(cell(page, 2)).not.toContainText('inplace_magic');
    const sidebar = await openSidebar(page);
    await expect(sidebar).toContainText('No diagnoses for this notebook yet');
  });

  test('%gradcheck on: a failing cell without the magic is diagnosed', async ({ page, tmpPath }) => {
    await openFixture(page, tmpPath, 'auto_on.ipynb');
    await runCells(page, 0, 1);

    await expect(cell(page, 1)).toContainText('modified by an inplace operation');
    const panel = panelIn(page, 1);
    await expect(panel).toBeVisible();
    await expect(panel.getByRole('heading')).toContainText('y.add_(1)');
    await expect(panel.getByRole('heading')).toContainText('w.sigmoid()');
    await expect(entry(await openSidebar(page), /y\.add_\(1\)/)).toHaveAttribute('data-status', 'new');
  });
});
