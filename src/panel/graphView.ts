/**
 * The graph as SVG: highlighted roles, pan (drag, arrow keys), zoom (wheel, +/-), fit (0), and
 * controls to show more or less of the neighbourhood. Every node and edge has an aria label.
 */
import { cls, h, s } from './dom';
import { edgeLabel, layoutGraph, visibleGraph, type ILaidEdge, type ILaidNode } from './graph';
import type { IGraphView, IWhere, NodeRole } from './protocol';

const ROLE_WORDS: Record<NodeRole, string> = {
  tensor: 'overwritten tensor',
  leaf: 'leaf tensor',
  saver: 'saved it for backward',
  writer: 'in-place writer',
  optimizer: 'optimizer step (in-place writer)',
  split: 'split: the value branches here',
  merge: 'merge: the branches meet here',
  step: 'op on a branch',
  backward: 'backward that needs the old value',
  caller: 'call site',
  more: 'collapsed ops'
};

const EDGE_WORDS: Record<string, string> = {
  data: 'data flow',
  skip: 'skip connection',
  saved: 'saved for backward',
  writes: 'in-place write',
  needs: 'needed by backward',
  calls: 'call'
};

export interface IGraphViewOptions {
  onReveal(where: IWhere): void;
}

interface IView {
  scale: number;
  x: number;
  y: number;
}

/** The graph panel: toolbar and SVG, re-laid out when the depth changes. */
export function renderGraph(graph: IGraphView, options: IGraphViewOptions): HTMLElement {
  let depth = Math.min(1, graph.max_level);
  let view: IView = { scale: 1, x: 0, y: 0 };
  const info = h('span', { className: cls('graphInfo'), attrs: { 'aria-live': 'polite' } });
  const button = (text: string, label?: string): HTMLButtonElement =>
    h(
      'button',
      {
        className: cls('button'),
        attrs: label ? { type: 'button', 'aria-label': label } : { type: 'button' }
      },
      text
    );
  const expand = button('Show more');
  const collapse = button('Show less');
  const zoomIn = button('+', 'Zoom in');
  const zoomOut = button('−', 'Zoom out');
  const fit = button('Fit', 'Fit the graph');
  const toolbar = h(
    'div',
    { className: cls('graphToolbar'), attrs: { role: 'toolbar', 'aria-label': 'Graph controls' } },
    expand,
    collapse,
    zoomIn,
    zoomOut,
    fit,
    info
  );
  const svg = s('svg', {
    className: cls('graphCanvas'),
    attrs: {
      role: 'group',
      tabindex: '0',
      'aria-label':
        'Dataflow around the overwritten tensor. Drag or use the arrow keys to pan, + and - to zoom, 0 to fit.'
    }
  });
  const viewport = s('g', { className: cls('graphViewport') });
  svg.append(markers(), viewport);
  const root = h('div', { className: cls('graph') }, toolbar, svg);

  const apply = (): void => {
    viewport.setAttribute('transform', `translate(${view.x} ${view.y}) scale(${view.scale})`);
  };
  const zoom = (factor: number): void => {
    view = { ...view, scale: Math.min(4, Math.max(0.25, view.scale * factor)) };
    apply();
  };
  const draw = (): void => {
    const visible = visibleGraph(graph, depth);
    const laid = layoutGraph(visible);
    viewport.replaceChildren(
      s('g', { className: cls('graphEdges') }, ...laid.edges.map(e => drawEdge(e, laid.nodes))),
      s('g', { className: cls('graphNodes') }, ...laid.nodes.map(n => drawNode(n, options)))
    );
    svg.setAttribute('viewBox', `0 0 ${Math.max(laid.width, 1)} ${Math.max(laid.height, 1)}`);
    svg.style.height = `${Math.min(Math.max(laid.height, 120), 460)}px`;
    view = { scale: 1, x: 0, y: 0 };
    apply();
    expand.disabled = depth >= graph.max_level;
    collapse.disabled = depth <= 0;
    info.textContent = visible.hidden
      ? `${visible.hidden} more node${visible.hidden === 1 ? '' : 's'} hidden`
      : '';
  };

  expand.addEventListener('click', () => {
    depth = Math.min(graph.max_level, depth + 1);
    draw();
  });
  collapse.addEventListener('click', () => {
    depth = Math.max(0, depth - 1);
    draw();
  });
  zoomIn.addEventListener('click', () => zoom(1.25));
  zoomOut.addEventListener('click', () => zoom(0.8));
  fit.addEventListener('click', () => {
    view = { scale: 1, x: 0, y: 0 };
    apply();
  });
  svg.addEventListener(
    'wheel',
    event => {
      event.preventDefault();
      zoom(event.deltaY < 0 ? 1.1 : 0.9);
    },
    { passive: false }
  );
  let drag: { x: number; y: number } | null = null;
  svg.addEventListener('pointerdown', event => {
    if ((event.target as Element).closest?.('.jp-InplaceMagic-node')) {
      return;
    }
    drag = { x: event.clientX - view.x, y: event.clientY - view.y };
  });
  svg.addEventListener('pointermove', event => {
    if (drag) {
      view = { ...view, x: event.clientX - drag.x, y: event.clientY - drag.y };
      apply();
    }
  });
  const stop = (): void => {
    drag = null;
  };
  svg.addEventListener('pointerup', stop);
  svg.addEventListener('pointerleave', stop);
  svg.addEventListener('keydown', event => {
    if (event.target !== svg) {
      return;
    }
    const step = 30;
    const moves: Record<string, [number, number]> = {
      ArrowLeft: [step, 0],
      ArrowRight: [-step, 0],
      ArrowUp: [0, step],
      ArrowDown: [0, -step]
    };
    if (event.key in moves) {
      const [dx, dy] = moves[event.key];
      view = { ...view, x: view.x + dx, y: view.y + dy };
      apply();
    } else if (event.key === '+' || event.key === '=') {
      zoom(1.25);
    } else if (event.key === '-') {
      zoom(0.8);
    } else if (event.key === '0') {
      view = { scale: 1, x: 0, y: 0 };
      apply();
    } else {
      return;
    }
    event.preventDefault();
  });
  draw();
  return root;
}

function markers(): SVGDefsElement {
  const arrow = (id: string, modifier: string): SVGMarkerElement =>
    s(
      'marker',
      {
        className: cls('arrow', modifier),
        attrs: {
          id,
          viewBox: '0 0 10 10',
          refX: '9',
          refY: '5',
          markerWidth: '7',
          markerHeight: '7',
          orient: 'auto'
        }
      },
      s('path', { attrs: { d: 'M0,0 L10,5 L0,10 z' } })
    );
  return s('defs', {}, arrow('jp-InplaceMagic-arrow', 'plain'), arrow('jp-InplaceMagic-arrow-hot', 'hot'));
}

function nodeAria(node: ILaidNode): string {
  const roles = node.roles.map(r => ROLE_WORDS[r]).join(', ');
  const where = node.where?.label ? `, ${node.where.label}` : '';
  const module = node.module ? ` in ${node.module}` : '';
  const text = node.text ? `: ${node.text}` : '';
  return `${roles}: ${node.op}${module}${where}${text}`;
}

function drawNode(node: ILaidNode, options: IGraphViewOptions): SVGGElement {
  const modifiers = node.roles.filter(r => r !== 'step');
  const x = node.x - node.width / 2;
  const y = node.y - node.height / 2;
  const text = s('text', { className: cls('nodeText') });
  node.lines.forEach((line, i) => {
    text.appendChild(
      s(
        'tspan',
        {
          className: cls('nodeLine', i === 0 && 'title'),
          attrs: { x: String(x + 12), y: String(y + 20 + i * 16) }
        },
        line
      )
    );
  });
  const reveal = node.where;
  const g = s(
    'g',
    {
      className: cls('node', ...modifiers),
      attrs: {
        'data-node-id': node.id,
        'data-roles': node.roles.join(' '),
        tabindex: '0',
        role: reveal ? 'button' : 'img',
        'aria-label': nodeAria(node) + (reveal ? '. Press Enter to show the line.' : '')
      }
    },
    s('title', {}, nodeAria(node)),
    s('rect', {
      className: cls('nodeBox'),
      attrs: {
        x: String(x),
        y: String(y),
        width: String(node.width),
        height: String(node.height),
        rx: node.roles.includes('tensor') ? String(node.height / 2) : '4'
      }
    }),
    text
  );
  if (reveal) {
    const go = (): void => options.onReveal(reveal);
    g.addEventListener('click', go);
    g.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        go();
      }
    });
  }
  return g;
}

function drawEdge(edge: ILaidEdge, nodes: ILaidNode[]): SVGGElement {
  const byId = new Map(nodes.map(n => [n.id, n]));
  const points = edge.points.map(p => `${p.x},${p.y}`).join(' L');
  const hot = edge.highlight || edge.broken;
  const label = edgeLabel(edge);
  const from = byId.get(edge.source);
  const to = byId.get(edge.target);
  const aria =
    `${EDGE_WORDS[edge.kind] ?? edge.kind} from ${from?.op ?? '?'} to ${to?.op ?? '?'}` +
    (label ? `: ${label}` : '') +
    (edge.broken ? ' (broken by the in-place write)' : '');
  return s(
    'g',
    {
      className: cls('edge', edge.kind, edge.highlight && 'highlight', edge.broken && 'broken'),
      attrs: {
        'data-edge-id': edge.id,
        'data-source': edge.source,
        'data-target': edge.target,
        role: 'img',
        'aria-label': aria
      }
    },
    s('path', {
      className: cls('edgePath'),
      attrs: {
        d: points ? `M${points}` : '',
        'marker-end': `url(#${hot ? 'jp-InplaceMagic-arrow-hot' : 'jp-InplaceMagic-arrow'})`
      }
    }),
    edge.labelAt &&
      s(
        'text',
        {
          className: cls('edgeLabel'),
          attrs: { x: String(edge.labelAt.x), y: String(edge.labelAt.y + 4), 'text-anchor': 'middle' }
        },
        label
      )
  );
}
