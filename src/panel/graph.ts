/**
 * What the graph shows: the part of the neighbourhood graph at a depth (nodes deeper than it hidden,
 * and the paths through them contracted into one edge, so a collapsed branch still connects the split
 * to the merge), the text of its nodes wrapped to a width, and its edge labels. The layout is in
 * ./graphLayout, the label placement in ./graphLabels.
 */
import type { EdgeKind, IGraphEdge, IGraphNode, IGraphView } from './wire';

export interface IVisibleEdge extends IGraphEdge {
  /** How many hidden nodes the edge stands for (0: a real edge). */
  via: number;
}

/** A node as shown: the kernel's, with what a compact layout folded into it from a node it left out. */
export interface IShownNode extends IGraphNode {
  notes?: string[];
}

export interface IVisibleGraph {
  nodes: IShownNode[];
  edges: IVisibleEdge[];
  hidden: number;
}

export interface IPoint {
  x: number;
  y: number;
}

export interface ILaidNode extends IShownNode {
  x: number;
  y: number;
  width: number;
  height: number;
  lines: string[];
  /** How many of `lines` are the title (drawn bold), then its code, then the last `noteLines`. */
  titleLines: number;
  noteLines: number;
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

/**
 * The graph's fonts: node text 12px monospace, edge labels 11px. CHAR_WIDTH is 12px monospace's
 * advance where the browser cannot measure it (./graphView measures it in the page).
 */
export const NODE_FONT_PX = 12;
export const LABEL_FONT_PX = 11;
export const CHAR_WIDTH = 7.3;
export const LINE_HEIGHT = 17;
export const LABEL_HEIGHT = 15;
/** The widest a node's line gets in the roomiest layout; narrower layouts wrap at fewer. */
export const MAX_CHARS = 34;
/** A title or a line of code wraps onto at most this many lines, the last one clipped. */
const MAX_WRAPPED = 3;

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

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** Where a line may break: after a space, else after what ends a part of a name or a call (`.`, `_`, `(`). */
function breakAt(text: string, width: number): number {
  const room = text.slice(0, width + 1);
  const space = room.lastIndexOf(' ');
  if (space >= width / 3) {
    return space + 1;
  }
  for (let i = Math.min(width, text.length - 1); i >= width / 3; i--) {
    if ('._,(=[·'.includes(text[i - 1])) {
      return i;
    }
  }
  return width;
}

/** `text` on lines of at most `width` characters, broken where a reader would break it. */
export function wrap(text: string, width: number, maxLines = MAX_WRAPPED): string[] {
  const lines: string[] = [];
  let rest = text.trim();
  while (rest.length > width && lines.length < maxLines - 1) {
    const cut = breakAt(rest, width);
    lines.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  lines.push(clip(rest, width));
  return lines;
}

/** The text a node shows: what it is, and its code (its location is on hover and in its name). */
export function nodeLines(node: IGraphNode): string[] {
  return [node.title, node.text].filter(Boolean).map(t => clip(t, MAX_CHARS));
}

/** A node's title, code and notes wrapped at `width` characters, and how many lines each takes. */
export function wrappedLines(
  node: IShownNode,
  width: number
): { lines: string[]; titleLines: number; noteLines: number } {
  const title = node.title ? wrap(node.title, width) : [];
  const code = node.text ? wrap(node.text, width) : [];
  const notes = (node.notes ?? []).flatMap(note => wrap(note, width));
  return { lines: [...title, ...code, ...notes], titleLines: title.length, noteLines: notes.length };
}

/**
 * The graph with each backward that needs the old value named in the tensor's node ("needed by
 * ConvolutionBackward0") instead of a node of its own, where that node has no other edge: the
 * tensor's own text already says which version was saved and which one is there now.
 */
export function foldBackward(visible: IVisibleGraph): IVisibleGraph {
  const notes = new Map<string, string[]>();
  const gone = new Set<string>();
  for (const node of visible.nodes) {
    const edges = visible.edges.filter(e => e.source === node.id || e.target === node.id);
    const [need] = edges;
    if (node.roles.join() !== 'backward' || edges.length !== 1 || need.kind !== 'needs') {
      continue;
    }
    gone.add(node.id);
    notes.set(need.source, [...(notes.get(need.source) ?? []), `needed by ${node.op}`]);
  }
  if (!gone.size) {
    return visible;
  }
  return {
    ...visible,
    nodes: visible.nodes
      .filter(n => !gone.has(n.id))
      .map(n => (notes.has(n.id) ? { ...n, notes: [...(n.notes ?? []), ...notes.get(n.id)!] } : n)),
    edges: visible.edges.filter(e => !gone.has(e.target))
  };
}

/** The size of an edge label's box, for node text `charWidth` wide per character. */
export function labelSize(label: string, charWidth = CHAR_WIDTH): { width: number; height: number } {
  const perChar = (charWidth * LABEL_FONT_PX) / NODE_FONT_PX;
  return label ? { width: label.length * perChar + 8, height: LABEL_HEIGHT } : { width: 0, height: 0 };
}

/** The label drawn on an edge. */
export function edgeLabel(edge: IVisibleEdge): string {
  if (edge.via > 0 && edge.kind !== 'calls') {
    const ops = `${edge.via} op${edge.via === 1 ? '' : 's'}`;
    return edge.label ? `${edge.label} (via ${ops})` : `via ${ops}`;
  }
  return edge.label;
}
