/**
 * The graph panel: a toolbar (call sites on or off, zoom, fit), a legend, and the SVG at the text's
 * own size: narrower output areas shrink it to at most MIN_FIT of it (12px text stays over 10px) and
 * scroll the rest, instead of scaling the text down to fit. Drawing is in ./graphDraw, pan and zoom in
 * ./graphControls.
 */
import { cls, h, s } from './dom';
import { layoutGraph, visibleGraph } from './graph';
import { PanZoom } from './graphControls';
import { drawEdge, drawNode, markers } from './graphDraw';
import type { CellNames } from './text';
import type { IGraphView, IWhere } from './wire';

export interface IGraphViewOptions {
  onReveal(where: IWhere): void;
  names: CellNames;
}

/** The smallest scale the graph is drawn at to fit its output area; below it, it scrolls. */
export const MIN_FIT = 0.85;

function button(text: string, label?: string): HTMLButtonElement {
  return h(
    'button',
    {
      className: cls('button'),
      attrs: label ? { type: 'button', 'aria-label': label, title: label } : { type: 'button' }
    },
    text
  );
}

const LEGEND: [string, string, string][] = [
  ['node', 'writer', 'wrote it in place'],
  ['node', 'saver', 'saved it for backward'],
  ['node', 'tensor', 'the overwritten tensor'],
  ['node', 'merge', 'split / merge of a branch'],
  ['edge', 'broken', 'the branch the write broke'],
  ['edge', 'plain', 'data flow']
];

function legend(): HTMLElement {
  return h(
    'ul',
    { className: cls('legend'), attrs: { 'aria-label': 'Legend' } },
    ...LEGEND.map(([what, modifier, words]) => {
      const swatch = s(
        'svg',
        { className: cls('swatch', modifier), attrs: { width: '22', height: '12', 'aria-hidden': 'true' } },
        what === 'node'
          ? s('rect', {
              attrs: { x: '3', y: '1', width: '16', height: '10', rx: modifier === 'tensor' ? '5' : '2' }
            })
          : s('path', { attrs: { d: 'M1,6 L21,6' } })
      );
      return h('li', { className: cls('legendItem') }, swatch, words);
    })
  );
}

/** The graph panel: toolbar, legend and SVG, laid out again when the call sites are shown or hidden. */
export function renderGraph(graph: IGraphView, options: IGraphViewOptions): HTMLElement {
  // level 1 shows both branches; level 2 adds the call sites, on request
  let depth = Math.min(1, graph.max_level);
  const info = h('span', { className: cls('graphInfo'), attrs: { 'aria-live': 'polite' } });
  const callers = button('Call sites');
  callers.title = 'Show the lines that called the writer and the saver';
  callers.setAttribute('aria-pressed', 'false');
  callers.hidden = graph.max_level < 2;
  const zoomOut = button('−', 'Zoom out (or Ctrl + wheel)');
  const zoomIn = button('+', 'Zoom in (or Ctrl + wheel)');
  const fit = button('Fit', 'Fit the graph');
  const toolbar = h(
    'div',
    { className: cls('graphToolbar'), attrs: { role: 'toolbar', 'aria-label': 'Graph controls' } },
    callers,
    zoomOut,
    zoomIn,
    fit,
    info
  );
  const svg = s('svg', {
    className: cls('graphCanvas'),
    attrs: {
      role: 'group',
      tabindex: '0',
      'aria-label':
        'Dataflow around the overwritten tensor. Drag or use the arrow keys to pan, + and - (or Ctrl and the wheel) to zoom, 0 to fit.'
    }
  });
  const viewport = s('g', { className: cls('graphViewport') });
  svg.append(markers(), viewport);
  const panZoom = new PanZoom(viewport);
  panZoom.attach(svg);
  const frame = h('div', { className: cls('graphFrame') }, svg);
  let size = { width: 1, height: 1 };

  const fitToFrame = (): void => {
    const available = frame.clientWidth;
    const scale = available > 0 ? Math.min(1, Math.max(MIN_FIT, available / size.width)) : 1;
    svg.setAttribute('width', String(Math.round(size.width * scale)));
    svg.setAttribute('height', String(Math.round(size.height * scale)));
    svg.dataset.fit = scale.toFixed(3);
  };
  const draw = (): void => {
    const visible = visibleGraph(graph, depth);
    const laid = layoutGraph(visible);
    viewport.replaceChildren(
      s('g', { className: cls('graphEdges') }, ...laid.edges.map(e => drawEdge(e, laid.nodes))),
      s(
        'g',
        { className: cls('graphNodes') },
        ...laid.nodes.map(n => drawNode(n, options.onReveal, options.names))
      )
    );
    size = { width: Math.max(laid.width, 1), height: Math.max(laid.height, 1) };
    svg.setAttribute('viewBox', `0 0 ${size.width} ${size.height}`);
    fitToFrame();
    panZoom.fit();
    callers.setAttribute('aria-pressed', String(depth >= 2));
    info.textContent = visible.hidden
      ? `${visible.hidden} more node${visible.hidden === 1 ? '' : 's'} hidden`
      : '';
  };
  callers.addEventListener('click', () => {
    depth = depth >= 2 ? 1 : Math.min(2, graph.max_level);
    draw();
  });
  zoomIn.addEventListener('click', () => panZoom.zoom(1.25));
  zoomOut.addEventListener('click', () => panZoom.zoom(0.8));
  fit.addEventListener('click', () => panZoom.fit());
  draw();
  new ResizeObserver(fitToFrame).observe(frame);
  return h('div', { className: cls('graph') }, toolbar, legend(), frame);
}
