/**
 * A fix's verification, updated by the kernel while the panel is shown (the UI side of issue 14's
 * item 1): `update_fix` on what the kernel showed redraws the fix in the panel and in the sidebar, a
 * spinner and "verifying…" first, then the verdict, and Apply is offered only when the kernel says so.
 */
import { expect } from '@jupyterlab/galata';

import { addCodeCell, entry, runCells, showDiagnosis } from './helpers';
import { test } from './kernel';

const SKIP = /block\.act.*overwrote.*block\.shortcut/;

test('the kernel updates a fix while its panel is shown, and Apply follows it', async ({
  page,
  tmpPath,
  kernel
}) => {
  const { panel, sidebar } = await showDiagnosis(page, tmpPath, 'skip_connection.ipynb', {
    sidebar: true,
    kernel
  });
  const fix = panel.locator('.jp-InplaceMagic-fix').first();
  const item = entry(sidebar, SKIP);
  // the default %%gradcheck verified the fix in the kernel before the spec takes over its label
  await expect(fix.locator('.jp-InplaceMagic-labels .jp-InplaceMagic-label')).toHaveText([
    'verified',
    'gradient-preserving'
  ]);
  const graphTab = panel.getByRole('tab', { name: 'Graph' });
  await graphTab.click();

  await addCodeCell(
    page,
    'from inplace_magic.ipython.display import last_shown\n' +
      'shown = last_shown()\n' +
      'shown.update_fix(0, {"status": "verifying"})'
  );
  await runCells(page, 3);
  await expect(fix.locator('.jp-InplaceMagic-labels')).toHaveText('verifying…');
  await expect(fix.locator('.jp-InplaceMagic-label--verifying .jp-InplaceMagic-spinner')).toBeVisible();
  const apply = fix.getByRole('button', { name: 'Apply' });
  await expect(apply).toBeDisabled();
  await expect(apply).toHaveAttribute('title', /running this fix/);
  await expect(item.locator('.jp-InplaceMagic-sidebarVerification').first()).toHaveText('verifying…');
  await expect(item.getByRole('button', { name: 'Apply fix' })).toBeDisabled();
  // only the fix changed: the tab the user opened stays open
  await expect(graphTab).toHaveAttribute('aria-selected', 'true');

  await addCodeCell(
    page,
    'shown.update_fix(0, {"status": "verified", "detail": "Backward ran; the gradients equal the reference."})'
  );
  await runCells(page, 4);
  await expect(fix.locator('.jp-InplaceMagic-labels')).toHaveText('verifiedgradient-preserving');
  await expect(fix).toContainText('Backward ran; the gradients equal the reference.');
  await expect(apply).toBeEnabled();
  await expect(item.locator('.jp-InplaceMagic-sidebarVerification').first()).toHaveText(
    'verified, gradient-preserving'
  );
  await expect(item.getByRole('button', { name: 'Apply fix' })).toBeEnabled();

  await addCodeCell(page, 'shown.update_fix(0, {"status": "did_not_help"})');
  await runCells(page, 5);
  await expect(fix.locator('.jp-InplaceMagic-labels')).toHaveText('did not help');
  await expect(apply).toBeDisabled();
  await expect(item.getByRole('button', { name: 'Apply fix' })).toBeDisabled();
});
