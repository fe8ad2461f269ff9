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
  labelAt: IPoint | null;
}

export interface ILayout {
  nodes: ILaidNode[];
  edges: ILaidEdge[];
  width: number;
  height: number;
}

const CHAR_WIDTH = 7;
const LINE_HEIGHT = 16;
const MAX_CHARS = 44;

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

/** The text lines a node shows: op and module, the code, the location. */
export function nodeLines(node: IGraphNode): string[] {
  const title = node.module ? `${node.op} · ${node.module}` : node.op;
  return [title, node.text, node.where?.label ?? ''].filter(Boolean).map(clip);
}

/** Positions for every node and a polyline for every edge, top to bottom. */
export function layoutGraph(visible: IVisibleGraph): ILayout {
  const g = new Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 28, ranksep: 46, edgesep: 14, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const lines = new Map<string, string[]>();
  for (const node of visible.nodes) {
    const text = nodeLines(node);
    lines.set(node.id, text);
    const longest = Math.max(...text.map(t => t.length), 6);
    g.setNode(node.id, { width: longest * CHAR_WIDTH + 24, height: text.length * LINE_HEIGHT + 14 });
  }
  for (const edge of visible.edges) {
    const label = edgeLabel(edge);
    g.setEdge(edge.source, edge.target, {
      width: label ? label.length * 6 + 8 : 0,
      height: label ? 14 : 0,
      labelpos: 'c'
    });
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
  const edges = visible.edges.map(edge => {
    const laid = g.edge(edge.source, edge.target) as { points?: IPoint[]; x?: number; y?: number };
    const labelAt =
      edgeLabel(edge) && laid.x !== undefined && laid.y !== undefined ? { x: laid.x, y: laid.y } : null;
    return { ...edge, points: laid.points ?? [], labelAt };
  });
  const size = g.graph() as { width?: number; height?: number };
  return { nodes, edges, width: size.width ?? 0, height: size.height ?? 0 };
}

/** The label drawn on an edge. */
export function edgeLabel(edge: IVisibleEdge): string {
  if (edge.via > 0 && edge.kind !== 'calls') {
    const ops = `${edge.via} op${edge.via === 1 ? '' : 's'}`;
    return edge.label ? `${edge.label} (via ${ops})` : `via ${ops}`;
  }
  return edge.label;
}
