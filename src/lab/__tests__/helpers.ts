/** Test doubles: a translator that fills %1-style placeholders, and text targets in memory. */
import type { IExpectedTarget, ITargetResolver, ITextTarget } from '../edits';
import type { ITrans } from '../trans';

export const trans: ITrans = {
  __: (msgid, ...args) => msgid.replace(/%(\d+)/g, (_, n: string) => String(args[Number(n) - 1]))
};

export class MemoryText implements ITextTarget {
  edits = 0;
  checkpoints = 0;

  constructor(
    readonly label: string,
    public text: string
  ) {}

  getSource(): string {
    return this.text;
  }

  updateSource(start: number, end: number, text: string): void {
    this.edits += 1;
    this.text = this.text.slice(0, start) + text + this.text.slice(end);
  }

  checkpoint(): void {
    this.checkpoints += 1;
  }
}

/** Cells by id (and by In[] number when a target has no id), files by path. */
export function resolver(
  cells: Record<string, MemoryText>,
  files: Record<string, MemoryText> = {}
): ITargetResolver {
  return {
    cell: (target: IExpectedTarget) => {
      const found = target.cellId ? cells[target.cellId] : cells[`#${target.cell}`];
      return found ?? `cell ${target.cell} no longer exists`;
    },
    file: async path => files[path] ?? `${path} does not exist`
  };
}
