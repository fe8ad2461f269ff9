/**
 * The graph panel: a toolbar (call sites on or off, zoom, fit), a legend, and the SVG laid out for the
 * width of its frame (./graphLayout picks the layout, wrapping node text in a narrow one, and the
 * scale, never below MIN_FIT): it is laid out again when the frame's width changes. Drawing is in
 * ./graphDraw, pan and zoom in ./graphControls.
 */
import { cls, h, s } from './dom';
import { CHAR_WIDTH, visibleGraph } from './graph';
import { PanZoom } from './graphControls';
import { drawEdge, drawNode, markers } from './graphDraw';
import { fitLayout } from './graphLayout';
import type { CellNames } from './text';
import type { IGraphView, IWhere } from './wire';

export interface IGraphViewOptions {
  onReveal(where: IWhere): void;
  names: CellNames;
}

const PROBE = 'M'.repeat(20);

/**
 * The advance of one character of the node font as the page draws it (monospace: every character
 * the same), so a node's box holds its text in whatever font the theme gives; the estimate where
 * the page cannot measure (not attached yet, or no layout engine).
 */
function measureCharWidth(svg: SVGSVGElement): number {
  if (!svg.isConnected) {
    return CHAR_WIDTH;
  }
  const probe = s('text', { className: cls('nodeText') }, PROBE);
  svg.append(probe);
  const length = typeof probe.getComputedTextLength === 'function' ? probe.getComputedTextLength() : 0;
  probe.remove();
  return length > 0 ? Math.max(CHAR_WIDTH, length / PROBE.length) : CHAR_WIDTH;
}

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
  // what the drawing was made for: redrawn only when one of them changes
  let drawnFor = '';
  let charWidth = CHAR_WIDTH;

  const draw = (): void => {
    if (svg.isConnected) {
      charWidth = measureCharWidth(svg);
    }
    const available = frame.clientWidth;
    const visible = visibleGraph(graph, depth);
    const fitted = fitLayout(visible, available, charWidth);
    const key = `${depth}:${fitted.spacing}:${charWidth}`;
    const laid = fitted.layout;
    if (key !== drawnFor) {
      drawnFor = key;
      viewport.replaceChildren(
        s('g', { className: cls('graphEdges') }, ...laid.edges.map(e => drawEdge(e, laid.nodes))),
        s(
          'g',
          { className: cls('graphNodes') },
          ...laid.nodes.map(n => drawNode(n, options.onReveal, options.names))
        )
      );
      panZoom.fit();
    }
    const width = Math.max(laid.width, 1);
    const height = Math.max(laid.height, 1);
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    // whole pixels, rounded down: a fraction over the frame's width would make it scroll
    svg.setAttribute('width', String(Math.floor(width * fitted.scale)));
    svg.setAttribute('height', String(Math.ceil(height * fitted.scale)));
    svg.dataset.fit = fitted.scale.toFixed(3);
    svg.dataset.spacing = String(fitted.spacing);
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
  // laid out again for the frame's width: when the tab opens (the frame enters the page), and when
  // the notebook narrows or widens; a change of height alone (its own drawing) changes nothing
  let width = -1;
  new ResizeObserver(() => {
    if (frame.clientWidth !== width) {
      width = frame.clientWidth;
      draw();
    }
  }).observe(frame);
  return h('div', { className: cls('graph') }, toolbar, legend(), frame);
}
