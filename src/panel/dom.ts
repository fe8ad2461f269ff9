/**
 * DOM construction for the panel. User text only ever becomes a Text node (never HTML), so code
 * such as `<script>` in a cell stays literal.
 */

export type Child = Node | string | null | undefined | false;

export interface IProps {
  className?: string;
  attrs?: Record<string, string>;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(node: Element, props: IProps, children: Child[]): void {
  if (props.className) {
    node.setAttribute('class', props.className);
  }
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

/** An HTML element whose string children are text. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: IProps = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  fill(node, props, children);
  return node;
}

/** An SVG element whose string children are text. */
export function s<K extends keyof SVGElementTagNameMap>(
  tag: K,
  props: IProps = {},
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  fill(node, props, children);
  return node;
}

/** `jp-InplaceMagic-<name>` plus modifiers `jp-InplaceMagic-<name>--<mod>`. */
export function cls(name: string, ...modifiers: (string | false | null | undefined)[]): string {
  const base = `jp-InplaceMagic-${name}`;
  return [base, ...modifiers.filter(Boolean).map(m => `${base}--${m as string}`)].join(' ');
}

/**
 * Text whose `backticked` spans (as the diagnosis writes code) become <code> elements; everything
 * stays text. An unpaired backtick is kept as a character.
 */
export function rich(text: string): Child[] {
  const parts = text.split('`');
  if (parts.length % 2 === 0) {
    parts[parts.length - 2] += `\`${parts.pop()}`;
  }
  return parts
    .map((part, i) => (i % 2 ? h('code', { className: cls('inlineCode') }, part) : part))
    .filter(p => p !== '');
}

/** Children as `replaceChildren` takes them (the absent ones dropped). */
export function present(children: Child[]): (Node | string)[] {
  return children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false);
}
