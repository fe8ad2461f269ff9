/**
 * The diagnosis panel and the magic in a real JupyterLab: scenarios 1 (panel part), 2, 3, 6, each also
 * checking what the sidebar shows for it; then what leads the eye (issue 14): the headline first, a
 * compact panel under a traceback whose library frames are folded, a graph with a legend whose labels
 * nothing crosses, readable at 900 px with the sidebar open, and a wheel that scrolls the page.
 */
import { expect } from '@jupyterlab/galata';
import type { Locator, Page } from '@playwright/test';

import {
  cell,
  entry,
  errorOutput,
  graphOf,
  openFixture,
  openSidebar,
  runCells,
  screenshot,
  showDiagnosis
} from './helpers';
import { test } from './kernel';

/** The traceback entries of cell `index`'s error output, as the notebook model keeps them. */
async function tracebackOf(page: Page, index: number): Promise<string[]> {
  return page.evaluate(i => {
    const nb = (window as any).jupyterapp.shell.currentWidget.content;
    const outputs = nb.model.cells.get(i).outputs;
    for (let k = 0; k < outputs.length; k++) {
      const output = outputs.get(k).toJSON();
      if (output.output_type === 'error') {
        return output.traceback as string[];
      }
    }
    return [];
  }, index);
}

/** Every edge label of the drawn graph that another edge path, a node or another label crosses. */
async function crossedLabels(graph: Locator): Promise<string[]> {
  return graph.evaluate(svg => {
    const boxes = [...svg.querySelectorAll('.jp-InplaceMagic-edge')].flatMap(edge => {
      const rect = edge.querySelector('.jp-InplaceMagic-edgeLabelBg');
      return rect
        ? [{ edge, label: edge.textContent ?? '', box: (rect as SVGGraphicsElement).getBBox() }]
        : [];
    });
    const inside = (x: number, y: number, b: DOMRect): boolean =>
      x > b.x + 0.5 && x < b.x + b.width - 0.5 && y > b.y + 0.5 && y < b.y + b.height - 0.5;
    const crossed: string[] = [];
    for (const { edge, label, box } of boxes) {
      for (const other of svg.querySelectorAll<SVGPathElement>('.jp-InplaceMagic-edgePath')) {
        if (edge.contains(other)) {
          continue; // a label sits on its own edge
        }
        const length = other.getTotalLength();
        for (let d = 0; d <= length; d += 1) {
          const p = other.getPointAtLength(d);
          if (inside(p.x, p.y, box)) {
            crossed.push(`${label}: crossed by ${other.closest('g')?.getAttribute('aria-label')}`);
            break;
          }
        }
      }
      for (const node of svg.querySelectorAll<SVGGraphicsElement>('.jp-InplaceMagic-nodeBox')) {
        const b = node.getBBox();
        if (
          b.x < box.x + box.width &&
          box.x < b.x + b.width &&
          b.y < box.y + box.height &&
          box.y < b.y + b.height
        ) {
          crossed.push(`${label}: under a node`);
        }
      }
    }
    return crossed;
  });
}

test.describe('diagnosis panel', () => {
  test('cross-cell skip connection: the panel shows writer, saver and merge', async ({
    page,
    tmpPath,
    kernel
  }) => {
    const { panel } = await showDiagnosis(page, tmpPath, 'skip_connection.ipynb', { kernel });
    await expect(panel.getByRole('heading')).toContainText('block.act');
    await expect(panel.getByRole('heading')).toContainText('block.shortcut');

    const graph = await graphOf(panel);
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
    tmpPath,
    kernel
  }) => {
    const { panel } = await showDiagnosis(page, tmpPath, 'gan.ipynb', { kernel });
    await expect(panel.getByRole('heading')).toContainText('opt_d.step()');
    await expect(panel.getByText('Updated by')).toBeVisible();
    const graph = await graphOf(panel);
    await expect(
      graph.getByRole('button', { name: /optimizer step \(in-place writer\)/ }).first()
    ).toBeVisible();
    const best = panel.locator('.jp-InplaceMagic-fix').first();
    await expect(best.locator('.jp-InplaceMagic-fixSummary')).toContainText('changes the training semantics');

    // the sidebar says so too, beside its Apply button
    const item = entry(await openSidebar(page), /opt_d\.step\(\)/);
    await expect(item).toContainText('changes the training semantics');
    await expect(item.getByRole('button', { name: 'Apply fix' })).toBeEnabled();
  });

  test('a shape mismatch in a residual add: no panel, the original traceback only', async ({
    page,
    tmpPath,
    kernel
  }) => {
    await openFixture(page, tmpPath, 'shape_mismatch.ipynb', kernel);
    await runCells(page, 0, 2);

    await expect(cell(page, 2)).toContainText('The size of tensor a (6) must match the size of tensor b (8)');
    await expect(cell(page, 2).locator('.jp-OutputArea-output')).toHaveCount(1);
    await expect(page.getByRole('region', { name: 'In-place autograd error diagnosis' })).toHaveCount(0);
    await expect(cell(page, 2)).toContainText('Traceback');
    await expect(cell(page, 2)).not.toContainText('inplace_magic');
    const sidebar = await openSidebar(page);
    await expect(sidebar).toContainText('No diagnoses for this notebook yet');
  });

  test('%gradcheck on: a failing cell without the magic is diagnosed', async ({ page, tmpPath, kernel }) => {
    const { panel } = await showDiagnosis(page, tmpPath, 'auto_on.ipynb', { failing: 1, kernel });
    await expect(cell(page, 1)).toContainText('modified by an inplace operation');
    await expect(panel.getByRole('heading')).toContainText('y.add_(1)');
    await expect(panel.getByRole('heading')).toContainText('w.sigmoid()');
    await expect(entry(await openSidebar(page), /y\.add_\(1\)/)).toHaveAttribute('data-status', 'new');
  });

  test('headline first, short names with the repr on hover, a compact panel under a folded traceback', async ({
    page,
    tmpPath,
    kernel
  }) => {
    const { panel } = await showDiagnosis(page, tmpPath, 'skip_connection.ipynb', { kernel });

    // the first thing in the panel is the headline: module paths, their repr on hover, no comment
    const headline = panel.getByRole('heading');
    await expect(headline).toHaveText(
      /^block\.act at cell \[2\], line 10 overwrote float32\[2, 4, 8, 8\] that block\.shortcut at cell \[2\], line 9 saved for backward$/
    );
    await expect(headline.locator('code', { hasText: 'block.act' })).toHaveAttribute(
      'title',
      'ReLU(inplace=True)'
    );
    await expect(headline.locator('code', { hasText: 'block.shortcut' })).toHaveAttribute(
      'title',
      /^Conv2d\(4, 4/
    );
    const top = await panel.evaluate(el => {
      const first = el.querySelector('.jp-InplaceMagic-header');
      return first === el.firstElementChild && !!first?.querySelector('[role=heading]');
    });
    expect(top).toBe(true);

    // the traceback: the user's frame and the error stay, torch's frames fold into one line
    const error = errorOutput(page, 2);
    await expect(error).toContainText('Cell In[3], line 5');
    await expect(error).toContainText('loss.backward()');
    await expect(error).toContainText('RuntimeError: one of the variables needed for gradient computation');
    await expect(error.getByText(/3 frames in torch \(library code\) folded/)).toBeVisible();
    await expect(error.getByText('torch/_tensor.py')).toBeHidden();
    // the exception itself is unchanged: the output keeps every frame, one click away
    const traceback = await tracebackOf(page, 2);
    expect(traceback.filter(e => e.includes('site-packages/torch')).length).toBe(3);
    const toggle = error.getByRole('button', { name: /Show full traceback/ });
    const folded = (await error.boundingBox())!.height;
    await toggle.click();
    await expect(error.getByText(/torch\/_tensor\.py/).first()).toBeVisible();
    console.log(`traceback: ${(await error.boundingBox())!.height} px in full, ${folded} px folded`);
    await error.getByRole('button', { name: 'Fold library frames' }).click();
    await expect(error.getByText(/torch\/_tensor\.py/).first()).toBeHidden();

    // compact: the panel starts within the first screen of the cell's output, and is short
    const cellBox = (await cell(page, 2).boundingBox())!;
    const panelBox = (await panel.boundingBox())!;
    const errorBox = (await error.boundingBox())!;
    console.log(`traceback ${errorBox.height} px, panel ${panelBox.height} px`);
    expect(panelBox.y - cellBox.y).toBeLessThan(650);
    expect(panelBox.height).toBeLessThan(Math.max(errorBox.height * 1.3, 420));
    await panel.scrollIntoViewIfNeeded();
    await screenshot(page, 'panel-compact-folded-traceback.png');
  });

  test('the graph: a legend, split and merge named, labels nothing crosses, the wheel scrolls the page', async ({
    page,
    tmpPath,
    kernel
  }) => {
    const { panel } = await showDiagnosis(page, tmpPath, 'skip_connection.ipynb', { kernel });
    const graph = await graphOf(panel);
    const legend = panel.getByRole('list', { name: 'Legend' });
    await expect(legend).toContainText('wrote it in place');
    await expect(legend).toContainText('the branch the write broke');
    // the split is the value that branches, the merge says how they meet
    await expect(graph.locator('.jp-InplaceMagic-node--split tspan').first()).toHaveText('split · h');
    await expect(graph.locator('.jp-InplaceMagic-node--split tspan').nth(1)).toHaveText('input of forward()');
    await expect(graph.locator('.jp-InplaceMagic-node--merge tspan').first()).toHaveText(
      'merge (add) · block'
    );
    expect(await crossedLabels(graph)).toEqual([]);
    await panel.getByRole('button', { name: 'Call sites' }).click();
    await expect(graph.locator('.jp-InplaceMagic-node--caller')).toHaveCount(1);
    expect(await crossedLabels(graph)).toEqual([]);

    // the wheel over the graph scrolls the notebook; with Ctrl it zooms the graph
    const viewport = graph.locator('.jp-InplaceMagic-graphViewport');
    const scroller = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
    await scroller.evaluate(el => (el.scrollTop = el.scrollHeight / 3));
    const box = (await graph.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const before = await scroller.evaluate(el => el.scrollTop);
    await page.mouse.wheel(0, 200);
    await expect.poll(() => scroller.evaluate(el => el.scrollTop)).toBeGreaterThan(before);
    await expect(viewport).toHaveAttribute('transform', 'translate(0 0) scale(1)');
    const graphBox = (await graph.boundingBox())!;
    await page.mouse.move(graphBox.x + graphBox.width / 2, graphBox.y + graphBox.height / 2);
    const still = await scroller.evaluate(el => el.scrollTop);
    await page.keyboard.down('Control');
    await page.mouse.wheel(0, -100);
    await page.keyboard.up('Control');
    await expect(viewport).toHaveAttribute('transform', /scale\(1\.1\)/);
    expect(await scroller.evaluate(el => el.scrollTop)).toBe(still);
    await graph.scrollIntoViewIfNeeded();
    await screenshot(page, 'panel-graph.png');
  });
});

/**
 * What is wrong with the node labels of a drawn graph, as the page shows them: a label outside the
 * graph's frame or the window, outside its own node's box, or overlapping another node's label or
 * an edge label.
 */
async function nodeLabelProblems(graph: Locator): Promise<string[]> {
  return graph.evaluate(svg => {
    const frame = svg.closest('.jp-InplaceMagic-graphFrame')!.getBoundingClientRect();
    const within = (inner: DOMRect, outer: DOMRect): boolean =>
      inner.left >= outer.left - 0.5 &&
      inner.right <= outer.right + 0.5 &&
      inner.top >= outer.top - 0.5 &&
      inner.bottom <= outer.bottom + 0.5;
    const overlap = (a: DOMRect, b: DOMRect): boolean =>
      a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
    const window_ = new DOMRect(0, 0, window.innerWidth, window.innerHeight * 100);
    const labels = [...svg.querySelectorAll<SVGGElement>('.jp-InplaceMagic-node')].map(node => ({
      name: node.querySelector('tspan')?.textContent ?? '?',
      text: node.querySelector('.jp-InplaceMagic-nodeText')!.getBoundingClientRect(),
      box: node.querySelector('.jp-InplaceMagic-nodeBox')!.getBoundingClientRect()
    }));
    const edgeLabels = [...svg.querySelectorAll('.jp-InplaceMagic-edgeLabelBg')].map(r =>
      r.getBoundingClientRect()
    );
    const problems: string[] = [];
    for (const label of labels) {
      if (!within(label.text, frame)) {
        problems.push(`${label.name}: outside the graph's frame`);
      }
      if (!within(label.text, window_)) {
        problems.push(`${label.name}: outside the window`);
      }
      if (!within(label.text, label.box)) {
        problems.push(`${label.name}: wider than its box`);
      }
      for (const other of labels) {
        if (other !== label && overlap(label.text, other.text)) {
          problems.push(`${label.name}: overlaps ${other.name}`);
        }
      }
      if (edgeLabels.some(edge => overlap(label.text, edge))) {
        problems.push(`${label.name}: under an edge label`);
      }
    }
    return problems;
  });
}

test.describe('at 900 px with the sidebar open', () => {
  test.use({ viewport: { width: 900, height: 900 } });

  test('the graph is laid out for the panel’s width: no sideways scroll, every label inside and apart', async ({
    page,
    tmpPath,
    kernel
  }) => {
    const { panel, sidebar } = await showDiagnosis(page, tmpPath, 'skip_connection.ipynb', {
      sidebar: true,
      kernel
    });
    // nothing of the panel is cut off or scrolls sideways
    const overflow = await panel.evaluate(el => el.scrollWidth - el.clientWidth);
    expect(overflow).toBeLessThanOrEqual(1);
    // nor of the sidebar's entry: its fixes' titles wrap, long identifiers included
    const item = entry(sidebar, /block\.act.*overwrote/);
    await expect(item.getByRole('radiogroup', { name: 'Fix to apply' })).toContainText('nn.ReLU()');
    const outside = await item.evaluate(el => {
      const right = el.getBoundingClientRect().right;
      return [...el.querySelectorAll('*')]
        .filter(child => child.getBoundingClientRect().right > right + 0.5)
        .map(child => child.textContent);
    });
    expect(outside).toEqual([]);
    const graph = await graphOf(panel);
    const frame = panel.locator('.jp-InplaceMagic-graphFrame');
    for (const callSites of [false, true]) {
      if (callSites) {
        await panel.getByRole('button', { name: 'Call sites' }).click();
        await expect(graph.locator('.jp-InplaceMagic-node--caller')).toHaveCount(1);
      }
      await graph.scrollIntoViewIfNeeded();
      // the graph fits its frame: no horizontal scroll bar, and the frame is inside the panel
      expect(await frame.evaluate(el => el.scrollWidth - el.clientWidth)).toBeLessThanOrEqual(0);
      const [frameBox, panelBox] = [(await frame.boundingBox())!, (await panel.boundingBox())!];
      expect(frameBox.x + frameBox.width).toBeLessThanOrEqual(panelBox.x + panelBox.width);
      expect(await nodeLabelProblems(graph)).toEqual([]);
      expect(await crossedLabels(graph)).toEqual([]);
      // every node's text is drawn at 10 px or more (12 px text, never shrunk below 0.85 of it)
      const sizes = await graph.evaluate(svg =>
        [...svg.querySelectorAll('.jp-InplaceMagic-nodeLine')].map(t => {
          const scale = (t as SVGGraphicsElement).getScreenCTM()!.a;
          return parseFloat(getComputedStyle(t).fontSize) * scale;
        })
      );
      expect(sizes.length).toBeGreaterThan(4);
      expect(Math.min(...sizes)).toBeGreaterThanOrEqual(10);
    }
    await panel.getByRole('button', { name: 'Call sites' }).click();
    await expect(graph.locator('.jp-InplaceMagic-node--caller')).toHaveCount(0);

    // the wheel over the graph scrolls the notebook here too, and leaves the graph as it is
    const viewport = graph.locator('.jp-InplaceMagic-graphViewport');
    const scroller = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
    const box = (await graph.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + Math.min(box.height / 2, 100));
    const before = await scroller.evaluate(el => el.scrollTop);
    await page.mouse.wheel(0, -200);
    await expect.poll(() => scroller.evaluate(el => el.scrollTop)).toBeLessThan(before);
    await expect(viewport).toHaveAttribute('transform', 'translate(0 0) scale(1)');

    // the README's picture: the fix and the whole graph beside the sidebar
    await graph.evaluate(el => el.scrollIntoView({ block: 'end' }));
    await screenshot(page, 'panel-900px-with-sidebar.png');
  });
});
