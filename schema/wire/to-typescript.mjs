// The TypeScript types of the wire protocol, generated from its JSON Schema (which Python writes
// from the TypedDicts: `make protocol` runs both). `node schema/wire/to-typescript.mjs` writes
// src/panel/wire.ts and src/lab/wire.ts; src/__tests__/wire.test.ts generates them again and diffs.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { compile } from 'json-schema-to-typescript';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');

/** Each schema file, the module it becomes, and the Python module that is its source. */
export const TARGETS = [
  {
    schema: 'panel.schema.json',
    output: 'src/panel/wire.ts',
    source: 'inplace_magic/panel/protocol.py',
    imports: {}
  },
  {
    schema: 'lab.schema.json',
    output: 'src/lab/wire.ts',
    source: 'inplace_magic/lab/protocol.py',
    // types of another schema file become imports, not copies
    imports: { 'panel.schema.json': '../panel/wire' }
  }
];

// the project's prettier style (json-schema-to-typescript's own defaults differ)
const STYLE = JSON.parse(readFileSync(join(ROOT, '.prettierrc.json'), 'utf-8'));

/** `$ref`s into another schema file -> `tsType` names, and the import line they need. */
function externalRefs(node, imports, used) {
  if (Array.isArray(node)) {
    return node.map(item => externalRefs(item, imports, used));
  }
  if (node === null || typeof node !== 'object') {
    return node;
  }
  const ref = node.$ref;
  if (typeof ref === 'string' && !ref.startsWith('#')) {
    const [file, pointer] = ref.split('#');
    const name = `I${pointer.split('/').pop()}`;
    if (!(file in imports)) {
      throw new Error(`no module for ${file} (referenced as ${ref})`);
    }
    used.set(name, imports[file]);
    const rest = { ...node };
    delete rest.$ref;
    return { ...rest, tsType: name };
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, externalRefs(v, imports, used)]));
}

/** The module of one target as it is in the tree. */
export function committed(target) {
  return readFileSync(join(ROOT, target.output), 'utf-8');
}

/** The TypeScript module of one target, as a string. */
export async function generate(target) {
  const raw = JSON.parse(readFileSync(join(HERE, target.schema), 'utf-8'));
  const used = new Map();
  const schema = externalRefs(raw, target.imports, used);
  const constants = Object.entries(schema['x-constants'] ?? {}).map(
    ([name, value]) => `export const ${name} = ${JSON.stringify(value).replace(/"/g, "'")};`
  );
  const importLines = [...used].map(([name, module]) => `import type { ${name} } from '${module}';`);
  const banner = [
    '/**',
    ` * Generated from ${target.source} (through schema/wire/${target.schema}): do not edit.`,
    ' * Change the TypedDicts there and run `make protocol`.',
    ' */',
    ...(importLines.length ? ['', ...importLines] : []),
    '',
    ...constants
  ].join('\n');
  return compile(schema, schema.title, {
    bannerComment: banner,
    cwd: HERE,
    additionalProperties: false,
    unreachableDefinitions: true,
    style: { bracketSpacing: true, ...STYLE }
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const target of TARGETS) {
    writeFileSync(join(ROOT, target.output), await generate(target));
    console.log(`wrote ${target.output}`);
  }
}
