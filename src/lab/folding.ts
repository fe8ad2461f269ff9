/**
 * Which entries of IPython's traceback to fold: it is one entry per frame (nbformat's `traceback`
 * list), so the user's frames (`Cell In[4], line 5`, or a file the diagnosis located), the header and
 * the exception itself are kept, and each run of frames inside installed packages (torch's backward,
 * autograd's engine) or the interpreter's own modules becomes one fold. ./tracebacks draws it.
 */
const ANSI = new RegExp(String.fromCharCode(27) + '\\[[0-9;]*m', 'g');

export type EntryKind = 'user' | 'library' | 'other';

export interface IClassified {
  kind: EntryKind;
  /** The package of a library frame ("torch"). */
  package: string;
}

function plain(entry: string): string {
  return entry.replace(ANSI, '');
}

/** What one entry of IPython's traceback is: a frame of the user's code, of a library, or neither. */
export function classify(entry: string, userFiles: string[]): IClassified {
  const text = plain(entry).trimStart();
  if (/^Cell In\[\d*\]/.test(text)) {
    return { kind: 'user', package: '' };
  }
  const file = /^File (.+?):\d+/.exec(text);
  if (!file) {
    return { kind: 'other', package: '' };
  }
  const path = file[1].replace(/\\/g, '/');
  if (userFiles.some(name => name && (path === name || path.endsWith(`/${name.replace(/^\.\//, '')}`)))) {
    return { kind: 'user', package: '' };
  }
  const installed = /\/(?:site|dist)-packages\/([^/]+)/.exec(path);
  if (installed) {
    return { kind: 'library', package: installed[1].replace(/\.py$/, '') };
  }
  // the interpreter's own modules (lib/python3.11/...) are library code too
  const stdlib = /\/lib\/python\d[\d.]*\/([^/]+)/.exec(path);
  return stdlib
    ? { kind: 'library', package: stdlib[1].replace(/\.py$/, '') }
    : { kind: 'user', package: '' };
}

/** The entries to show, with each run of library frames as one fold `{frames, packages}`. */
export function foldPlan(
  traceback: string[],
  userFiles: string[]
): ({ entry: string } | { frames: number; packages: string[] })[] {
  const plan: ({ entry: string } | { frames: number; packages: string[] })[] = [];
  for (const entry of traceback) {
    const found = classify(entry, userFiles);
    const last = plan[plan.length - 1];
    if (found.kind !== 'library') {
      plan.push({ entry });
    } else if (last && 'frames' in last) {
      last.frames += 1;
      if (!last.packages.includes(found.package)) {
        last.packages.push(found.package);
      }
    } else {
      plan.push({ frames: 1, packages: [found.package] });
    }
  }
  return plan;
}
