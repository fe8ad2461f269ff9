/**
 * Pan and zoom of the graph's SVG viewport: drag, the arrow keys, + and -, 0 to fit, and the wheel
 * with Ctrl (or ⌘) held: a plain wheel scrolls the notebook, as everywhere else on the page. The
 * transform lives here; the toolbar's buttons call the same methods.
 */

interface IView {
  scale: number;
  x: number;
  y: number;
}

const MIN_SCALE = 0.25;
const MAX_SCALE = 4;
const KEY_STEP = 30;

export class PanZoom {
  private view: IView = { scale: 1, x: 0, y: 0 };
  private drag: { x: number; y: number } | null = null;

  constructor(private viewport: SVGGElement) {
    this.apply();
  }

  zoom(factor: number): void {
    this.view = { ...this.view, scale: Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.view.scale * factor)) };
    this.apply();
  }

  pan(dx: number, dy: number): void {
    this.view = { ...this.view, x: this.view.x + dx, y: this.view.y + dy };
    this.apply();
  }

  fit(): void {
    this.view = { scale: 1, x: 0, y: 0 };
    this.apply();
  }

  get scale(): number {
    return this.view.scale;
  }

  /** Listen on `svg`: Ctrl+wheel zooms, a drag outside the nodes pans, keys pan, zoom and fit. */
  attach(svg: SVGSVGElement): void {
    svg.addEventListener(
      'wheel',
      event => {
        if (!event.ctrlKey && !event.metaKey) {
          return; // the page scrolls
        }
        event.preventDefault();
        this.zoom(event.deltaY < 0 ? 1.1 : 0.9);
      },
      { passive: false }
    );
    svg.addEventListener('pointerdown', event => {
      // a press on a node is a click that reveals its line, not the start of a drag
      if ((event.target as Element).closest?.('.jp-InplaceMagic-node')) {
        return;
      }
      this.drag = { x: event.clientX - this.view.x, y: event.clientY - this.view.y };
    });
    svg.addEventListener('pointermove', event => {
      if (this.drag) {
        this.view = { ...this.view, x: event.clientX - this.drag.x, y: event.clientY - this.drag.y };
        this.apply();
      }
    });
    const stop = (): void => {
      this.drag = null;
    };
    svg.addEventListener('pointerup', stop);
    svg.addEventListener('pointerleave', stop);
    svg.addEventListener('keydown', event => {
      if (event.target === svg && this.key(event.key)) {
        event.preventDefault();
      }
    });
  }

  /** Whether `key` did something. */
  private key(key: string): boolean {
    const moves: Record<string, [number, number]> = {
      ArrowLeft: [KEY_STEP, 0],
      ArrowRight: [-KEY_STEP, 0],
      ArrowUp: [0, KEY_STEP],
      ArrowDown: [0, -KEY_STEP]
    };
    if (key in moves) {
      this.pan(...moves[key]);
    } else if (key === '+' || key === '=') {
      this.zoom(1.25);
    } else if (key === '-') {
      this.zoom(0.8);
    } else if (key === '0') {
      this.fit();
    } else {
      return false;
    }
    return true;
  }

  private apply(): void {
    this.viewport.setAttribute(
      'transform',
      `translate(${this.view.x} ${this.view.y}) scale(${this.view.scale})`
    );
  }
}
