/**
 * Scenario 8: the dark theme. The panel and the sidebar take JupyterLab's theme variables: their text
 * is readable (WCAG contrast >= 4.5 for body text, >= 3 for graph labels), and a screenshot of the
 * whole page is kept as an artifact (not compared).
 */
import { expect } from '@jupyterlab/galata';

import { contrastOf, entry, graphOf, openSidebar, openTab, screenshot, showDiagnosis } from './helpers';
import { test } from './kernel';

test('dark theme: the panel and the sidebar are readable', async ({ page, tmpPath, kernel }) => {
  await page.theme.setDarkTheme();
  const { panel } = await showDiagnosis(page, tmpPath, 'skip_connection.ipynb', { kernel });
  const body = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  // a dark page: the theme really changed
  const dark = (await page.evaluate(() => document.body.dataset.jpThemeLight)) === 'false';
  expect(dark, `body background ${body}`).toBe(true);

  const why = await openTab(panel, 'Why');
  const graph = await graphOf(panel);
  const checks: [string, import('@playwright/test').Locator, number][] = [
    ['panel headline', panel.getByRole('heading').first(), 4.5],
    ['folded traceback line', panel.page().locator('.jp-InplaceMagic-foldedFrames').first(), 4.5],
    ['graph legend', panel.locator('.jp-InplaceMagic-legendItem').first(), 4.5],
    ['graph edge label', graph.locator('.jp-InplaceMagic-edgeLabel').first(), 3],
    ['graph writer label', panel.locator('.jp-InplaceMagic-node--writer tspan').first(), 3],
    ['graph saver label', panel.locator('.jp-InplaceMagic-node--saver tspan').first(), 3],
    ['graph overwritten tensor label', panel.locator('.jp-InplaceMagic-node--tensor tspan').first(), 3],
    ['graph merge label', panel.locator('.jp-InplaceMagic-node--merge tspan').first(), 3],
    ['fix diff context line', panel.locator('.jp-InplaceMagic-diffLine--ctx').first(), 4.5],
    ['fix diff removed line', panel.locator('.jp-InplaceMagic-diffLine--del').first(), 4.5],
    ['fix diff added line', panel.locator('.jp-InplaceMagic-diffLine--add').first(), 4.5],
    ['Apply button', panel.getByRole('button', { name: 'Apply' }).first(), 3]
  ];
  const low: string[] = [];
  await openTab(panel, 'Why');
  await expect(why).toBeVisible();
  const explanation = await contrastOf(why.locator('.jp-InplaceMagic-explanation'));
  if (explanation < 4.5) {
    low.push(`panel explanation: ${explanation.toFixed(2)} < 4.5`);
  }
  await openTab(panel, 'Graph');
  for (const [what, locator, minimum] of checks) {
    await expect(locator, what).toBeVisible({ timeout: 10000 });
    await locator.scrollIntoViewIfNeeded();
    const ratio = await contrastOf(locator);
    console.log(`${what}: contrast ${ratio.toFixed(2)} (minimum ${minimum})`);
    if (ratio < minimum) {
      low.push(`${what}: ${ratio.toFixed(2)} < ${minimum}`);
    }
  }

  const sidebar = await openSidebar(page);
  const item = entry(sidebar, /block\.act/);
  await expect(item).toBeVisible();
  const sidebarChecks: [string, import('@playwright/test').Locator, number][] = [
    ['sidebar title', sidebar.getByRole('heading').first(), 4.5],
    ['sidebar headline', item.getByRole('paragraph').filter({ hasText: 'overwrote' }), 4.5],
    ['sidebar status', item.getByText('new', { exact: true }), 3],
    ['sidebar location', item.getByRole('button', { name: /cell \[\d+\], line \d+/ }).first(), 3],
    ['sidebar Apply', item.getByRole('button', { name: 'Apply fix' }), 3]
  ];
  for (const [what, locator, minimum] of sidebarChecks) {
    await expect(locator, what).toBeVisible({ timeout: 10000 });
    const ratio = await contrastOf(locator);
    console.log(`${what}: contrast ${ratio.toFixed(2)} (minimum ${minimum})`);
    if (ratio < minimum) {
      low.push(`${what}: ${ratio.toFixed(2)} < ${minimum}`);
    }
  }

  await graph.scrollIntoViewIfNeeded();
  await screenshot(page, 'scenario8-dark-theme.png');
  // every unreadable element named at once, after the screenshot is kept
  expect(low, 'text too faint on the dark theme').toEqual([]);
});
