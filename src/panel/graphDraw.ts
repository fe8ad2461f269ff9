/**
 * Drawing the laid-out graph as SVG: an arrowhead per style, a group per node (box, text lines, an
 * aria label, Enter or click to reveal its line) and per edge (path, label). No layout here.
 */
import { cls, s } from './dom';
import { edgeLabel, LINE_HEIGHT, type ILaidEdge, type ILaidNode } from './graph';
import { type CellNames, plainText } from './text';
import type { EdgeKind, IWhere, NodeRole } from './wire';

export const ROLE_WORDS: Record<NodeRole, string> = {
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

export const EDGE_WORDS: Record<EdgeKind, string> = {
  data: 'data flow',
  skip: 'skip connection',
  saved: 'saved for backward',
  writes: 'in-place write',
  needs: 'needed by backward',
  calls: 'call'
};

export function markers(): SVGDefsElement {
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

function nodeAria(node: ILaidNode, names: CellNames): string {
  const roles = node.roles.map(r => ROLE_WORDS[r]).join(', ');
  const where = node.where ? `, ${plainText(node.where.parts, names) || node.where.label}` : '';
  const module = node.module ? ` in ${node.module}` : '';
  const text = node.text ? `: ${node.text}` : '';
  const notes = node.notes?.length ? `; ${node.notes.join('; ')}` : '';
  return `${roles}: ${node.op}${module}${where}${text}${notes}`;
}

export function drawNode(node: ILaidNode, onReveal: (where: IWhere) => void, names: CellNames): SVGGElement {
  const modifiers = node.roles.filter(r => r !== 'step');
  const x = node.x - node.width / 2;
  const y = node.y - node.height / 2;
  const text = s('text', { className: cls('nodeText') });
  node.lines.forEach((line, i) => {
    text.appendChild(
      s(
        'tspan',
        {
          className: cls(
            'nodeLine',
            i < node.titleLines && 'title',
            i >= node.lines.length - node.noteLines && 'note'
          ),
          attrs: { x: String(x + 10), y: String(y + 17 + i * LINE_HEIGHT) }
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
        'aria-label': nodeAria(node, names) + (reveal ? '. Press Enter to show the line.' : '')
      }
    },
    s('title', {}, nodeAria(node, names)),
    s('rect', {
      className: cls('nodeBox'),
      attrs: {
        x: String(x),
        y: String(y),
        width: String(node.width),
        height: String(node.height),
        // a pill for the tensor, its corners no rounder than its text allows when it wraps
        rx: node.roles.includes('tensor') ? String(Math.min(node.height / 2, 12)) : '4'
      }
    }),
    text
  );
  if (reveal) {
    const go = (): void => onReveal(reveal);
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

export function drawEdge(edge: ILaidEdge, nodes: ILaidNode[]): SVGGElement {
  const byId = new Map(nodes.map(n => [n.id, n]));
  const points = edge.points.map(p => `${p.x},${p.y}`).join(' L');
  const hot = edge.highlight || edge.broken;
  const label = edgeLabel(edge);
  const from = byId.get(edge.source);
  const to = byId.get(edge.target);
  const aria =
    `${EDGE_WORDS[edge.kind]} from ${from?.op ?? '?'} to ${to?.op ?? '?'}` +
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
        'g',
        { className: cls('edgeLabelBox') },
        s('rect', {
          className: cls('edgeLabelBg'),
          attrs: {
            x: String(edge.labelAt.x - edge.labelSize.width / 2),
            y: String(edge.labelAt.y - edge.labelSize.height / 2),
            width: String(edge.labelSize.width),
            height: String(edge.labelSize.height),
            rx: '3'
          }
        }),
        s(
          'text',
          {
            className: cls('edgeLabel'),
            attrs: { x: String(edge.labelAt.x), y: String(edge.labelAt.y + 4), 'text-anchor': 'middle' }
          },
          label
        )
      )
  );
}
