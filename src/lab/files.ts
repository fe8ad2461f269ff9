/**
 * Where a `.py` file the kernel named lives for JupyterLab's contents API: kernels report absolute
 * paths, or paths relative to their working directory (the notebook's folder).
 */

function normalise(parts: string[]): string[] | null {
  const out: string[] = [];
  for (const part of parts) {
    if (part === '' || part === '.') {
      continue;
    }
    if (part === '..') {
      if (!out.length) {
        return null;
      }
      out.pop();
    } else {
      out.push(part);
    }
  }
  return out;
}

/**
 * The contents-API path of `file`, or null when it lies outside the server's root (JupyterLab cannot
 * open it). `serverRoot` is the server's absolute root folder, `notebookPath` the notebook's contents path.
 */
export function contentsPath(file: string, serverRoot: string, notebookPath: string): string | null {
  const posix = file.replace(/\\/g, '/');
  if (posix.startsWith('/') || /^[A-Za-z]:\//.test(posix)) {
    const root = serverRoot.replace(/\\/g, '/').replace(/\/+$/, '');
    if (!root || !posix.startsWith(root + '/')) {
      return null;
    }
    const inside = normalise(posix.slice(root.length + 1).split('/'));
    return inside && inside.length ? inside.join('/') : null;
  }
  const folder = notebookPath.split('/').slice(0, -1);
  const joined = normalise([...folder, ...posix.split('/')]);
  return joined && joined.length ? joined.join('/') : null;
}
