// The types of to-typescript.mjs, for the TypeScript test that runs it (src/__tests__/wire.test.ts).
export interface ITarget {
  schema: string;
  output: string;
  source: string;
  imports: Record<string, string>;
}

export const TARGETS: ITarget[];

export function committed(target: ITarget): string;

export function generate(target: ITarget): Promise<string>;
