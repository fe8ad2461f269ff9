/**
 * The graph panel: a toolbar (show more or less of the neighbourhood, zoom, fit) over the SVG,
 * re-laid out when the depth changes. Drawing is in ./graphDraw, pan and zoom in ./graphControls.
 */
import { cls, h, s } from './dom';
import { layoutGraph, visibleGraph } from './graph';
import { PanZoom } from './graphControls';
import { drawEdge, drawNode, markers } from './graphDraw';
import type { IGraphView, IWhere } from './wire';

export interface IGraphViewOptions {
  onReveal(where: IWhere): void;
}

function button(text: string, label?: string): HTMLButtonElement {
  return h(
    'button',
    {
      className: cls('button'),
      attrs: label ? { type: 'button', 'aria-label': label } : { type: 'button' }
    },
    text
  );
}

/** The graph panel: toolbar and SVG, re-laid out when the depth changes. */
export function renderGraph(graph: IGraphView, options: IGraphViewOptions): HTMLElement {
  let depth = Math.min(1, graph.max_level);
  const info = h('span', { className: cls('graphInfo'), attrs: { 'aria-live': 'polite' } });
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
  const panZoom = new PanZoom(viewport);
  panZoom.attach(svg);

  const draw = (): void => {
    const visible = visibleGraph(graph, depth);
    const laid = layoutGraph(visible);
    viewport.replaceChildren(
      s('g', { className: cls('graphEdges') }, ...laid.edges.map(e => drawEdge(e, laid.nodes))),
      s('g', { className: cls('graphNodes') }, ...laid.nodes.map(n => drawNode(n, options.onReveal)))
    );
    svg.setAttribute('viewBox', `0 0 ${Math.max(laid.width, 1)} ${Math.max(laid.height, 1)}`);
    svg.style.height = `${Math.min(Math.max(laid.height, 120), 460)}px`;
    panZoom.fit();
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
  zoomIn.addEventListener('click', () => panZoom.zoom(1.25));
  zoomOut.addEventListener('click', () => panZoom.zoom(0.8));
  fit.addEventListener('click', () => panZoom.fit());
  draw();
  return h('div', { className: cls('graph') }, toolbar, svg);
}
