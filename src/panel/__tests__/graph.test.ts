import { describe, expect, it } from 'vitest';

import { foldBackward, nodeLines, visibleGraph, wrap } from '../graph';
import { labelCollisions, segmentHitsBox } from '../graphLabels';
import { fitLayout, layoutGraph, MIN_FIT, SPACINGS } from '../graphLayout';
import type { IGraphView, NodeRole } from '../wire';
import { FIXTURE_NAMES, state } from './fixtures';

function withRole(graph: IGraphView, role: NodeRole) {
  return graph.nodes.filter(n => n.roles.includes(role));
}

describe('the neighbourhood graph of each kind', () => {
  it('skip connection: the writer is the merge, the saver and the split are there, the skip edge is broken', () => {
    const { graph } = state('skip_connection');
    const [writer] = withRole(graph, 'writer');
    expect(writer.roles).toContain('merge');
    expect(writer.text).toBe('x += residual');
    expect(withRole(graph, 'saver').map(n => n.module)).toEqual(['blocks.1.act2']);
    const [split] = withRole(graph, 'split');
    expect(split.where?.line).toBe(18); // `residual = x`, where the skip is captured
    const broken = graph.edges.filter(e => e.broken);
    expect(broken.map(e => e.kind).sort()).toEqual(['needs', 'skip']);
    const skip = graph.edges.find(e => e.kind === 'skip')!;
    expect(skip.source).toBe(split.id);
    // the legend says what the dashed edge is; the label would only clutter it
    expect(skip.label).toBe('');
  });

  it('shortcut conv: the split is the conv1x1 line and the merge the in-place add', () => {
    const { graph } = state('skip_shortcut');
    expect(withRole(graph, 'split')[0].text).toBe('residual = self.conv1x1(x)');
    expect(withRole(graph, 'merge')[0].roles).toContain('writer');
  });

  it('optimizer step: the optimizer is the writer of the parameter, no skip edge', () => {
    const { graph } = state('optimizer_step');
    const [optimizer] = withRole(graph, 'optimizer');
    expect(optimizer.op).toBe('Adam.step() call #1');
    expect(optimizer.text).toBe('opt_D.step()');
    expect(withRole(graph, 'writer')).toEqual([]);
    const [tensor] = withRole(graph, 'tensor');
    expect(tensor.module).toBe('D.2.weight');
    expect(graph.edges.some(e => e.kind === 'skip')).toBe(false);
    const saved = graph.edges.find(e => e.kind === 'saved')!;
    expect(saved.source).toBe(tensor.id); // a Linear saved its input: the parameter
    expect(graph.edges.find(e => e.kind === 'writes')!.target).toBe(optimizer.id);
  });

  it('leaf: the tensor is a leaf written in place, nothing saved it', () => {
    const { graph } = state('leaf');
    const [tensor] = withRole(graph, 'tensor');
    expect(tensor.roles).toContain('leaf');
    expect(withRole(graph, 'saver')).toEqual([]);
    expect(withRole(graph, 'backward')).toEqual([]);
    expect(withRole(graph, 'writer')[0].op).toBe('sub_');
  });

  it('view: the view comes out of the split op and is clamped in place', () => {
    const { graph } = state('view');
    const [saver] = withRole(graph, 'saver');
    const [tensor] = withRole(graph, 'tensor');
    expect(saver.op).toBe('split');
    expect(graph.edges.find(e => e.kind === 'saved')).toMatchObject({ source: saver.id, target: tensor.id });
    expect(withRole(graph, 'writer')[0].op).toBe('clamp_');
  });

  it('branch merged by cat: the merge node is the cat', () => {
    const { graph } = state('branch_cat');
    expect(withRole(graph, 'merge')[0].op).toBe('cat');
    expect(withRole(graph, 'writer')[0].op).toBe('relu_');
  });
});

describe('showing part of the graph', () => {
  it('contracts hidden branch steps so the split still reaches the merge', () => {
    const { graph } = state('skip_connection');
    const full = visibleGraph(graph, graph.max_level);
    expect(full.nodes).toHaveLength(graph.nodes.length);
    const core = visibleGraph(graph, 0);
    expect(core.nodes.every(n => n.level === 0)).toBe(true);
    expect(core.hidden).toBeGreaterThan(0);
    const split = graph.nodes.find(n => n.roles.includes('split'))!;
    const merge = graph.nodes.find(n => n.roles.includes('merge'))!;
    const direct = core.edges.filter(e => e.source === split.id && e.target === merge.id);
    expect(direct).toHaveLength(1);
    expect(direct[0].broken).toBe(true);
    expect(direct[0].kind).toBe('skip');
  });

  it.each(FIXTURE_NAMES)('lays out %s with every node placed and every edge drawn', name => {
    const { graph } = state(name);
    for (let depth = 0; depth <= graph.max_level; depth++) {
      const laid = layoutGraph(visibleGraph(graph, depth));
      for (const node of laid.nodes) {
        expect(Number.isFinite(node.x) && Number.isFinite(node.y)).toBe(true);
      }
      for (const edge of laid.edges) {
        expect(edge.points.length).toBeGreaterThan(1);
      }
      expect(laid.width).toBeGreaterThan(0);
    }
  });

  it('names the split and the merge by what they are, never by the op that made the value', () => {
    for (const name of FIXTURE_NAMES) {
      const { graph } = state(name);
      for (const node of graph.nodes) {
        const [title, text] = nodeLines(node);
        if (node.roles.includes('split')) {
          expect(title, name).toMatch(/^split · /);
          expect(text ?? '', name).not.toMatch(/^def /);
        }
        if (node.roles.includes('merge') && !node.roles.includes('writer')) {
          expect(title, name).toMatch(/^merge \(\w+\)/);
        }
      }
    }
  });

  it('places every edge label where no edge, node or other label crosses it, in every layout', () => {
    const crossed: string[] = [];
    for (const name of FIXTURE_NAMES) {
      const { graph } = state(name);
      for (let depth = 0; depth <= graph.max_level; depth++) {
        SPACINGS.forEach((spacing, i) => {
          const laid = layoutGraph(visibleGraph(graph, depth), spacing);
          crossed.push(...labelCollisions(laid).map(c => `${name}@${depth}/${i}: ${c}`));
        });
      }
    }
    expect(crossed).toEqual([]);
  });

  it('tells a segment that crosses a box from one that passes it', () => {
    const box = { x0: 0, y0: 0, x1: 10, y1: 10 };
    expect(segmentHitsBox({ x: -5, y: 5 }, { x: 15, y: 5 }, box)).toBe(true);
    expect(segmentHitsBox({ x: -5, y: -5 }, { x: 15, y: -1 }, box)).toBe(false);
    expect(segmentHitsBox({ x: 2, y: 2 }, { x: 3, y: 3 }, box)).toBe(true);
    expect(segmentHitsBox({ x: 12, y: -5 }, { x: 12, y: 15 }, box)).toBe(false);
  });

  it('is the same layout for the same diagnosis', () => {
    const { graph } = state('branch_cat');
    expect(layoutGraph(visibleGraph(graph, 1))).toEqual(layoutGraph(visibleGraph(graph, 1)));
  });
});

describe('a layout for the width there is', () => {
  // the graph's frame in a 900 px JupyterLab window with the left sidebar open
  const NARROW = 440;

  it('fits the frame of a 900 px window with the sidebar open, text at 0.85 of its size or more', () => {
    const misfits: string[] = [];
    for (const name of FIXTURE_NAMES) {
      const { graph } = state(name);
      const { layout, scale, spacing } = fitLayout(visibleGraph(graph, 1), NARROW);
      if (layout.width * scale > NARROW || scale < MIN_FIT) {
        misfits.push(`${name}: ${Math.round(layout.width)} px at ${scale.toFixed(2)} (spacing ${spacing})`);
      }
    }
    expect(misfits).toEqual([]);
  });

  it('keeps the roomiest layout at its own size where it fits, and before the frame is in the page', () => {
    const visible = visibleGraph(state('branch_cat').graph, 1);
    expect(fitLayout(visible, 2000)).toMatchObject({ spacing: 0, scale: 1 });
    expect(fitLayout(visible, 0)).toMatchObject({ spacing: 0, scale: 1 });
    const narrow = fitLayout(visible, NARROW);
    expect(narrow.spacing).toBeGreaterThan(0);
    expect(narrow.layout.width).toBeLessThan(layoutGraph(visible).width);
  });

  it('wraps every node line inside its box, and no two nodes overlap, in every layout', () => {
    const wrong: string[] = [];
    for (const name of FIXTURE_NAMES) {
      const { graph } = state(name);
      SPACINGS.forEach((spacing, i) => {
        const { nodes } = layoutGraph(visibleGraph(graph, graph.max_level), spacing, 8);
        for (const node of nodes) {
          for (const line of node.lines) {
            if (line.length > spacing.maxChars || line.length * 8 + 20 > node.width + 0.01) {
              wrong.push(`${name}/${i}: "${line}" in ${node.width}`);
            }
          }
          for (const other of nodes) {
            const apart =
              Math.abs(node.x - other.x) >= (node.width + other.width) / 2 ||
              Math.abs(node.y - other.y) >= (node.height + other.height) / 2;
            if (other !== node && !apart) {
              wrong.push(`${name}/${i}: ${node.title} overlaps ${other.title}`);
            }
          }
        }
      });
    }
    expect(wrong).toEqual([]);
  });

  it('breaks lines where a reader would: at spaces, then after ".", "_" or "("', () => {
    expect(wrap('self.save_for_backward(tenIn, tenFlow)', 20)).toEqual([
      'self.save_for_',
      'backward(tenIn,',
      'tenFlow)'
    ]);
    expect(wrap('convolution · block.shortcut', 20)).toEqual(['convolution ·', 'block.shortcut']);
    expect(wrap('x += residual', 20)).toEqual(['x += residual']);
    // past three lines the last one is clipped, never longer than the width
    const long = wrap('a'.repeat(100), 16);
    expect(long).toHaveLength(3);
    expect(long[2]).toMatch(/…$/);
    expect(Math.max(...long.map(l => l.length))).toBeLessThanOrEqual(16);
  });

  it('names the backward in the tensor node where a narrow layout leaves its node out', () => {
    const visible = visibleGraph(state('skip_connection').graph, 1);
    const backward = visible.nodes.find(n => n.roles.includes('backward'))!;
    const folded = foldBackward(visible);
    expect(folded.nodes.map(n => n.id)).not.toContain(backward.id);
    expect(folded.edges.some(e => e.target === backward.id || e.source === backward.id)).toBe(false);
    const tensor = folded.nodes.find(n => n.roles.includes('tensor'))!;
    expect(tensor.notes).toEqual([`needed by ${backward.op}`]);
    expect(folded.nodes).toHaveLength(visible.nodes.length - 1);
    // a graph without such a node is left as it is
    const leaf = visibleGraph(state('leaf').graph, 1);
    expect(foldBackward(leaf)).toBe(leaf);
  });
});
