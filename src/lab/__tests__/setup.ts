// What JupyterLab's packages touch at import time and a browser has, but jsdom lacks.
const globals = globalThis as Record<string, unknown>;
if (!('DragEvent' in globals)) {
  globals.DragEvent = class extends MouseEvent {};
}
if (!('IntersectionObserver' in globals)) {
  globals.IntersectionObserver = class {
    observe(): void {}
    unobserve(): void {}
    disconnect(): void {}
    takeRecords(): [] {
      return [];
    }
  };
}
if (!window.matchMedia) {
  window.matchMedia = (query: string): MediaQueryList =>
    ({
      matches: false,
      media: query,
      onchange: null,
      addListener: () => undefined,
      removeListener: () => undefined,
      addEventListener: () => undefined,
      removeEventListener: () => undefined,
      dispatchEvent: () => false
    }) as MediaQueryList;
}
