/**
 * Edge labels where nothing crosses them: each label goes to the first place along its edge that no
 * other edge, node or label touches, and the layout grows to hold them. Also the check the tests
 * and the browser tests make of a drawn layout.
 */
import { edgeLabel, type ILaidEdge, type ILayout, type IPoint } from './graph';

export interface IBox {
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
