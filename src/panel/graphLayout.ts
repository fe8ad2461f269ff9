/**
 * The graph's layout (dagre, top to bottom), and the choice of a layout for the width there is: the
 * roomiest one that fits, else one whose node text wraps at fewer characters with tighter spacing,
 * scaled down at most to MIN_FIT (12px text stays over 10px). Only a frame too narrow for the most
 * compact layout at MIN_FIT scrolls sideways, rather than shrink the text past reading.
 */
import { Graph, layout } from '@dagrejs/dagre';

import {
  CHAR_WIDTH,
  edgeLabel,
  foldBackward,
  LINE_HEIGHT,
  labelSize,
  MAX_CHARS,
  type ILaidEdge,
  type ILayout,
  type IPoint,
  type IVisibleGraph,
  wrappedLines
} from './graph';
import { placeLabels } from './graphLabels';

/** The smallest scale the graph is drawn at to fit its frame; below it, it scrolls. */
export const MIN_FIT = 0.85;

export interface ISpacing {
  /** The widest line of a node, in characters; longer titles and code wrap. */
  maxChars: number;
  nodesep: number;
  ranksep: number;
  /**
   * Name the backward that needs the old value in the tensor's node instead of a node of its own:
   * one column fewer in a narrow frame.
   */
  foldBackward: boolean;
}

/** From the roomiest to the most compact: each is tried in turn for a narrow frame. */
export const SPACINGS: readonly ISpacing[] = [
  { maxChars: MAX_CHARS, nodesep: 24, ranksep: 40, foldBackward: false },
  { maxChars: 24, nodesep: 16, ranksep: 34, foldBackward: false },
  { maxChars: 20, nodesep: 12, ranksep: 30, foldBackward: true },
  { maxChars: 16, nodesep: 10, ranksep: 28, foldBackward: true }
];

/** Positions for every node and a polyline for every edge, top to bottom. */
export function layoutGraph(
  visible: IVisibleGraph,
  spacing: ISpacing = SPACINGS[0],
  charWidth = CHAR_WIDTH
): ILayout {
  const g = new Graph();
  g.setGraph({
    rankdir: 'TB',
    nodesep: spacing.nodesep,
    ranksep: spacing.ranksep,
    edgesep: 12,
    marginx: 10,
    marginy: 10
  });
  g.setDefaultEdgeLabel(() => ({}));
  const text = new Map<string, ReturnType<typeof wrappedLines>>();
  const shown = spacing.foldBackward ? foldBackward(visible) : visible;
  for (const node of shown.nodes) {
    const wrapped = wrappedLines(node, spacing.maxChars);
    text.set(node.id, wrapped);
    const longest = Math.max(...wrapped.lines.map(t => t.length), 6);
    g.setNode(node.id, {
      width: longest * charWidth + 20,
      height: wrapped.lines.length * LINE_HEIGHT + 10
    });
  }
  for (const edge of shown.edges) {
    // a label on its edge (dagre keeps the other edges out of its box); drawn over its edge
    g.setEdge(edge.source, edge.target, { ...labelSize(edgeLabel(edge), charWidth), labelpos: 'c' });
  }
  layout(g);
  const nodes = shown.nodes.map(node => {
    const laid = g.node(node.id) as { x: number; y: number; width: number; height: number };
    return { ...node, x: laid.x, y: laid.y, width: laid.width, height: laid.height, ...text.get(node.id)! };
  });
  const edges: ILaidEdge[] = shown.edges.map(edge => {
    const laid = g.edge(edge.source, edge.target) as { points?: IPoint[]; x?: number; y?: number };
    const label = edgeLabel(edge);
    const labelAt = label && laid.x !== undefined && laid.y !== undefined ? { x: laid.x, y: laid.y } : null;
    return { ...edge, points: laid.points ?? [], labelAt, labelSize: labelSize(label, charWidth) };
  });
  const size = g.graph() as { width?: number; height?: number };
  return placeLabels({ nodes, edges, width: size.width ?? 0, height: size.height ?? 0 });
}

export interface IFitted {
  layout: ILayout;
  /** Which of SPACINGS it uses. */
  spacing: number;
  /** The scale it is drawn at: 1, or down to MIN_FIT to fit the frame. */
  scale: number;
}

/**
 * The layout for a frame `available` pixels wide (0: not in the page yet, the roomiest): the first of
 * SPACINGS that fits at its own size, else the one drawn largest once scaled to fit, never below
 * MIN_FIT.
 */
export function fitLayout(visible: IVisibleGraph, available: number, charWidth = CHAR_WIDTH): IFitted {
  let best: IFitted | null = null;
  for (let spacing = 0; spacing < SPACINGS.length; spacing++) {
    const laid = layoutGraph(visible, SPACINGS[spacing], charWidth);
    const width = Math.max(laid.width, 1);
    if (available <= 0 || width <= available) {
      return { layout: laid, spacing, scale: 1 };
    }
    const scale = Math.max(MIN_FIT, available / width);
    if (!best || scale > best.scale) {
      best = { layout: laid, spacing, scale };
    }
  }
  return best!;
}
