/**
 * The part of the neighbourhood graph to show at a depth, and its layout (dagre).
 *
 * Nodes deeper than the depth are hidden and the paths through them contracted into one edge, so a
 * collapsed branch still connects the split to the merge.
 */
import { Graph, layout } from '@dagrejs/dagre';

import type { EdgeKind, IGraphEdge, IGraphNode, IGraphView } from './wire';

export interface IVisibleEdge extends IGraphEdge {
  /** How many hidden nodes the edge stands for (0: a real edge). */
  via: number;
}

export interface IVisibleGraph {
  nodes: IGraphNode[];
  edges: IVisibleEdge[];
  hidden: number;
}

export interface IPoint {
  x: number;
  y: number;
}

export interface ILaidNode extends IGraphNode {
  x: number;
  y: number;
  width: number;
  height: number;
  lines: string[];
}

export interface ILaidEdge extends IVisibleEdge {
  points: IPoint[];
  /** The centre of the label's box (`labelSize` wide and high), or null for an unlabelled edge. */
  labelAt: IPoint | null;
  labelSize: { width: number; height: number };
}

export interface ILayout {
  nodes: ILaidNode[];
  edges: ILaidEdge[];
  width: number;
  height: number;
}

/** The graph's font: 12px monospace, drawn at its own size (never below 0.85 of it, see ./graphView). */
export const CHAR_WIDTH = 7.3;
export const LINE_HEIGHT = 17;
const MAX_CHARS = 34;
const LABEL_CHAR_WIDTH = 6.2;
export const LABEL_HEIGHT = 15;

/** The nodes at `level <= depth`, with the paths through deeper nodes contracted. */
export function visibleGraph(graph: IGraphView, depth: number): IVisibleGraph {
  const shown = new Set(graph.nodes.filter(n => n.level <= depth).map(n => n.id));
  const out = new Map<string, IGraphEdge[]>();
  for (const edge of graph.edges) {
    out.set(edge.source, [...(out.get(edge.source) ?? []), edge]);
  }
  const edges: IVisibleEdge[] = [];
  const seen = new Map<string, IVisibleEdge>();
  const add = (edge: IVisibleEdge): void => {
    const key = `${edge.source}->${edge.target}`;
    const found = seen.get(key);
    if (found) {
      // parallel paths between two shown nodes: one edge that keeps what matters (a broken skip)
      found.highlight ||= edge.highlight;
      found.broken ||= edge.broken;
      if (edge.kind === 'skip') {
        found.kind = 'skip';
        found.label = edge.label;
      }
    } else if (edge.source !== edge.target) {
      seen.set(key, edge);
      edges.push(edge);
    }
  };
  for (const edge of graph.edges) {
    if (shown.has(edge.source) && shown.has(edge.target)) {
      add({ ...edge, via: 0 });
    }
  }
  for (const first of graph.edges) {
    if (!shown.has(first.source) || shown.has(first.target)) {
      continue;
    }
    // walk through hidden nodes until visible ones are reached
    const stack: { id: string; via: number; highlight: boolean; broken: boolean }[] = [
      { id: first.target, via: 1, highlight: first.highlight, broken: first.broken }
    ];
    const visited = new Set<string>();
    while (stack.length) {
      const item = stack.pop()!;
      if (visited.has(item.id)) {
        continue;
      }
      visited.add(item.id);
      for (const next of out.get(item.id) ?? []) {
        const highlight = item.highlight || next.highlight;
        const broken = item.broken || next.broken;
        if (shown.has(next.target)) {
          const kind: EdgeKind = first.kind === 'skip' || first.kind === 'calls' ? first.kind : 'data';
          add({
            ...first,
            id: `${first.id}~${next.id}`,
            target: next.target,
            kind,
            label: first.label || next.label,
            highlight,
            broken,
            via: item.via
          });
        } else {
          stack.push({ id: next.target, via: item.via + 1, highlight, broken });
        }
      }
    }
  }
  return {
    nodes: graph.nodes.filter(n => shown.has(n.id)),
    edges,
    hidden: graph.nodes.length - shown.size + graph.omitted
  };
}

function clip(text: string): string {
  return text.length <= MAX_CHARS ? text : `${text.slice(0, MAX_CHARS - 1)}…`;
}

/** The text lines a node shows: what it is, and its code (its location is on hover and in its name). */
export function nodeLines(node: IGraphNode): string[] {
  return [node.title, node.text].filter(Boolean).map(clip);
}

/** The size of an edge label's box. */
export function labelSize(label: string): { width: number; height: number } {
  return label
    ? { width: label.length * LABEL_CHAR_WIDTH + 8, height: LABEL_HEIGHT }
    : { width: 0, height: 0 };
}

/** Positions for every node and a polyline for every edge, top to bottom. */
export function layoutGraph(visible: IVisibleGraph): ILayout {
  const g = new Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 40, edgesep: 12, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  const lines = new Map<string, string[]>();
  for (const node of visible.nodes) {
    const text = nodeLines(node);
    lines.set(node.id, text);
    const longest = Math.max(...text.map(t => t.length), 6);
    g.setNode(node.id, { width: longest * CHAR_WIDTH + 20, height: text.length * LINE_HEIGHT + 10 });
  }
  for (const edge of visible.edges) {
    // a label on its edge (dagre keeps the other edges out of its box); drawn over its edge
    const size = labelSize(edgeLabel(edge));
    g.setEdge(edge.source, edge.target, { ...size, labelpos: 'c' });
  }
  layout(g);
  const nodes = visible.nodes.map(node => {
    const laid = g.node(node.id) as { x: number; y: number; width: number; height: number };
    return {
      ...node,
      x: laid.x,
      y: laid.y,
      width: laid.width,
      height: laid.height,
      lines: lines.get(node.id)!
    };
  });
  const edges: ILaidEdge[] = visible.edges.map(edge => {
    const laid = g.edge(edge.source, edge.target) as { points?: IPoint[]; x?: number; y?: number };
    const labelAt =
      edgeLabel(edge) && laid.x !== undefined && laid.y !== undefined ? { x: laid.x, y: laid.y } : null;
    return { ...edge, points: laid.points ?? [], labelAt, labelSize: labelSize(edgeLabel(edge)) };
  });
  const size = g.graph() as { width?: number; height?: number };
  return placeLabels({ nodes, edges, width: size.width ?? 0, height: size.height ?? 0 });
}

interface IBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

function labelBox(edge: ILaidEdge, at: IPoint | null = edge.labelAt): IBox | null {
  if (!at || !edge.labelSize.width) {
    return null;
  }
  const { width, height } = edge.labelSize;
  return { x0: at.x - width / 2, y0: at.y - height / 2, x1: at.x + width / 2, y1: at.y + height / 2 };
}

function grow(box: IBox, by: number): IBox {
  return { x0: box.x0 - by, y0: box.y0 - by, x1: box.x1 + by, y1: box.y1 + by };
}

function overlaps(a: IBox, b: IBox): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/** Whether the segment from `a` to `b` passes through `box` (Liang–Barsky clipping). */
export function segmentHitsBox(a: IPoint, b: IPoint, box: IBox): boolean {
  let t0 = 0;
  let t1 = 1;
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const sides: [number, number][] = [
    [-dx, a.x - box.x0],
    [dx, box.x1 - a.x],
    [-dy, a.y - box.y0],
    [dy, box.y1 - a.y]
  ];
  for (const [p, q] of sides) {
    if (p === 0) {
      if (q < 0) {
        return false;
      }
    } else {
      const t = q / p;
      if (p < 0) {
        t0 = Math.max(t0, t);
      } else {
        t1 = Math.min(t1, t);
      }
      if (t0 > t1) {
        return false;
      }
    }
  }
  return true;
}

function pathHitsBox(points: IPoint[], box: IBox): boolean {
  for (let i = 1; i < points.length; i++) {
    if (segmentHitsBox(points[i - 1], points[i], box)) {
      return true;
    }
  }
  return false;
}

/** The point at `fraction` of a polyline's length. */
function pointAlong(points: IPoint[], fraction: number): IPoint | null {
  if (!points.length) {
    return null;
  }
  const lengths = points.slice(1).map((p, i) => Math.hypot(p.x - points[i].x, p.y - points[i].y));
  let left = lengths.reduce((sum, l) => sum + l, 0) * fraction;
  for (let i = 0; i < lengths.length; i++) {
    if (left <= lengths[i] && lengths[i] > 0) {
      const t = left / lengths[i];
      return {
        x: points[i].x + (points[i + 1].x - points[i].x) * t,
        y: points[i].y + (points[i + 1].y - points[i].y) * t
      };
    }
    left -= lengths[i];
  }
  return points[points.length - 1];
}

/** What the label of `own` at `box` would collide with: other edges, nodes, labels already placed. */
function collisions(own: ILaidEdge, box: IBox, layout: ILayout, placed: IBox[]): number {
  const margin = grow(box, 1);
  let count = 0;
  for (const edge of layout.edges) {
    if (edge !== own && pathHitsBox(edge.points, margin)) {
      count += 1;
    }
  }
  for (const node of layout.nodes) {
    const nodeBox = {
      x0: node.x - node.width / 2,
      y0: node.y - node.height / 2,
      x1: node.x + node.width / 2,
      y1: node.y + node.height / 2
    };
    if (overlaps(grow(nodeBox, 2), box)) {
      count += 1;
    }
  }
  return count + placed.filter(other => overlaps(grow(other, 2), box)).length;
}

/**
 * Every edge label where no other edge, no node and no other label crosses it: dagre's place on its
 * edge when that is free, else the first free place along the edge. The layout grows to hold them.
 */
export function placeLabels(layout: ILayout): ILayout {
  const placed: IBox[] = [];
  for (const edge of layout.edges) {
    const first = labelBox(edge);
    if (!first || !edge.labelAt) {
      continue;
    }
    const candidates: IPoint[] = [edge.labelAt];
    for (const fraction of [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8]) {
      const p = pointAlong(edge.points, fraction);
      if (p) {
        candidates.push(p);
      }
    }
    let best = { at: edge.labelAt, hits: Infinity };
    for (const at of candidates) {
      const hits = collisions(edge, labelBox(edge, at)!, layout, placed);
      if (hits < best.hits) {
        best = { at, hits };
      }
      if (hits === 0) {
        break;
      }
    }
    edge.labelAt = best.at;
    placed.push(labelBox(edge)!);
  }
  const left = Math.min(0, ...placed.map(b => b.x0 - 4));
  const right = Math.max(layout.width, ...placed.map(b => b.x1 + 4));
  const bottom = Math.max(layout.height, ...placed.map(b => b.y1 + 4));
  if (left < 0) {
    const shift = (p: IPoint): IPoint => ({ x: p.x - left, y: p.y });
    layout.nodes.forEach(n => (n.x -= left));
    layout.edges.forEach(e => {
      e.points = e.points.map(shift);
      e.labelAt = e.labelAt && shift(e.labelAt);
    });
  }
  return { ...layout, width: right - left, height: bottom };
}

/** Each label that an edge, a node or another label crosses: what the layout must never draw. */
export function labelCollisions(layout: ILayout): string[] {
  const found: string[] = [];
  const boxes = layout.edges.map(e => labelBox(e));
  layout.edges.forEach((edge, i) => {
    const box = boxes[i];
    if (!box) {
      return;
    }
    const others = boxes.filter((b, j): b is IBox => b !== null && j !== i);
    if (collisions(edge, box, layout, others) > 0) {
      found.push(`${edge.id} "${edgeLabel(edge)}"`);
    }
  });
  return found;
}

/** The label drawn on an edge. */
export function edgeLabel(edge: IVisibleEdge): string {
  if (edge.via > 0 && edge.kind !== 'calls') {
    const ops = `${edge.via} op${edge.via === 1 ? '' : 's'}`;
    return edge.label ? `${edge.label} (via ${ops})` : `via ${ops}`;
  }
  return edge.label;
}
