/**
 * The generated TypeScript of the wire protocol is what its JSON Schema says: generated again here
 * and diffed (tests/test_protocol_generated.py does the same for the schema against the TypedDicts).
 */
import { describe, expect, it } from 'vitest';

import { committed, generate, TARGETS } from '../../schema/wire/to-typescript.mjs';

describe('the generated wire types', () => {
  it.each(TARGETS.map(t => [t.output, t] as const))('%s is up to date (make protocol)', async (_, target) => {
    const inTree = committed(target);
    expect(inTree).toBe(await generate(target));
    expect(inTree).toContain('do not edit');
  });
});
