/**
 * The kernel's text as segments (plain, code with what it stands for on hover, cell references), and
 * the live names of the cells a panel refers to: the notebook renames them (a re-run gives a cell a
 * new In[] number) through the link handshake, and every reference drawn follows.
 */
import { cls, h, rich, type Child } from './dom';
import { refKey, type ICellRef } from './events';
import type { ISegment, IWhere } from './wire';

const REF_ATTR = 'data-cell-ref';

/** The names the notebook gave the cells of one panel; the kernel's words until it does. */
export class CellNames {
  private names = new Map<string, string>();

  constructor(private root: Element) {}

  /** The notebook's name for the cell `key`, else `fallback` (the kernel's). */
  name(key: string | null, fallback: string): string {
    return (key !== null && this.names.get(key)) || fallback;
  }

  /** New names from the notebook: every reference under the root is renamed. */
  update(names: Record<string, string>): void {
    this.names = new Map(Object.entries(names));
    this.root.querySelectorAll(`[${REF_ATTR}]`).forEach(node => {
      const key = node.getAttribute(REF_ATTR);
      const fallback = node.getAttribute('data-kernel-name') ?? node.textContent ?? '';
      node.textContent = this.name(key, fallback);
    });
  }

  /** `node` shows the name of cell `key`, and follows renames. */
  track<T extends Element>(node: T, key: string | null, kernelName: string): T {
    if (key !== null) {
      node.setAttribute(REF_ATTR, key);
      node.setAttribute('data-kernel-name', kernelName);
    }
    node.textContent = this.name(key, kernelName);
    return node;
  }
}

/** Every cell the segments of `value` (a state, or any part of it) refer to. */
export function cellRefs(value: unknown): ICellRef[] {
  const found = new Map<string, ICellRef>();
  const walk = (item: unknown): void => {
    if (Array.isArray(item)) {
      item.forEach(walk);
    } else if (typeof item === 'object' && item !== null) {
      const record = item as Record<string, unknown>;
      if (typeof record.cell === 'number') {
        const cellId = typeof record.cell_id === 'string' ? record.cell_id : null;
        const key = refKey({ cell: record.cell, cell_id: cellId });
        if (key !== null && !found.has(key)) {
          found.set(key, { cell: record.cell, cellId });
        }
      }
      Object.values(record).forEach(walk);
    }
  };
  walk(value);
  return [...found.values()];
}

/** The segments as nodes: code (with its hover title), cell references that follow renames, text. */
export function segments(parts: ISegment[], names: CellNames): Child[] {
  return parts.map(part => {
    if (part.code) {
      const attrs: Record<string, string> = part.title ? { title: part.title } : {};
      return h('code', { className: cls('inlineCode'), attrs }, part.text);
    }
    if (part.cell !== undefined) {
      const ref = h('span', { className: cls('cellRef') });
      return names.track(ref, refKey(part), part.text);
    }
    return part.text;
  });
}

/** A location's label ("cell [7], line 10"), its cell named as the notebook shows it now. */
export function whereText(where: IWhere, names: CellNames): Child[] {
  return where.parts.length ? segments(where.parts, names) : rich(where.label);
}

/** The plain text of segments, with the cells named as the notebook shows them now. */
export function plainText(parts: ISegment[], names: CellNames): string {
  return parts
    .map(part => (part.cell !== undefined ? names.name(refKey(part), part.text) : part.text))
    .join('');
}
