// The DynamoDB tables, generated from infra/tables.json: the one definition shared with the Rust
// code (norris-dynamo's schema.rs reads the same file for `norris tables create`).
import * as fs from 'fs';
import * as path from 'path';

export type AttributeType = 'S' | 'N' | 'B';

export interface KeyDef {
  readonly name: string;
  readonly type: AttributeType;
}

export interface IndexDef {
  readonly name: string;
  readonly partitionKey: KeyDef;
  readonly sortKey?: KeyDef;
}

export interface TableDef {
  /** The logical key in tables.json (`jobs`, `pools`, `ledger`, `results`): physical name `<prefix>-<key>`. */
  readonly key: string;
  readonly description: string;
  readonly partitionKey: KeyDef;
  readonly sortKey?: KeyDef;
  readonly indexes: IndexDef[];
  readonly ttlAttribute?: string;
}

export const TABLES_JSON = path.join(__dirname, '..', 'tables.json');

function key(v: unknown, at: string): KeyDef {
  const k = v as { name?: unknown; type?: unknown };
  if (typeof k?.name !== 'string' || !['S', 'N', 'B'].includes(k.type as string)) {
    throw new Error(`${TABLES_JSON}: ${at} must be {"name": string, "type": "S"|"N"|"B"}`);
  }
  return { name: k.name, type: k.type as AttributeType };
}

/** Reads infra/tables.json (fails loudly on a shape it does not know). */
export function loadTables(file: string = TABLES_JSON): TableDef[] {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  return Object.entries(doc)
    .filter(([k]) => !k.startsWith('_'))
    .map(([k, raw]) => {
      const t = raw as Record<string, unknown>;
      const indexes = (t.global_secondary_indexes ?? []) as Record<string, unknown>[];
      return {
        key: k,
        description: String(t.description ?? ''),
        partitionKey: key(t.partition_key, `${k}.partition_key`),
        sortKey: t.sort_key === undefined ? undefined : key(t.sort_key, `${k}.sort_key`),
        indexes: indexes.map((ix, i) => ({
          name: String(ix.name),
          partitionKey: key(ix.partition_key, `${k}.global_secondary_indexes[${i}].partition_key`),
          sortKey: ix.sort_key === undefined ? undefined : key(ix.sort_key, `${k}.global_secondary_indexes[${i}].sort_key`),
        })),
        ttlAttribute: typeof t.time_to_live_attribute === 'string' ? t.time_to_live_attribute : undefined,
      };
    });
}
