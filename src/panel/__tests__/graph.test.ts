import { describe, expect, it } from 'vitest';

import { labelCollisions, layoutGraph, nodeLines, segmentHitsBox, visibleGraph } from '../graph';
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

  it('places every edge label where no edge, node or other label crosses it', () => {
    const crossed: string[] = [];
    for (const name of FIXTURE_NAMES) {
      const { graph } = state(name);
      for (let depth = 0; depth <= graph.max_level; depth++) {
        crossed.push(
          ...labelCollisions(layoutGraph(visibleGraph(graph, depth))).map(c => `${name}@${depth}: ${c}`)
        );
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
