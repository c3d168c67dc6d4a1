// The DynamoDB tables, generated from infra/tables.json: the one definition shared with the Rust
// code (norris-dynamo's schema.rs reads the same file for `norris tables create`).
import * as fs from 'fs';
import * as path from 'path';

export type AttributeType = 'S' | 'N' | 'B';

export interface KeyDef {
  readonly name: string;
  readonly type: AttributeType;
}

/** What an index copies of each item: its keys only (one write unit a copy, readers fetch the
 * items by key), or every attribute (a copy billed like a write of the whole item). */
export type IndexProjection = 'KEYS_ONLY' | 'ALL';

export interface IndexDef {
  readonly name: string;
  readonly partitionKey: KeyDef;
  readonly sortKey?: KeyDef;
  readonly projection: IndexProjection;
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

function projection(v: unknown, at: string): IndexProjection {
  if (v !== 'KEYS_ONLY' && v !== 'ALL') throw new Error(`${TABLES_JSON}: ${at} must be "KEYS_ONLY" or "ALL"`);
  return v;
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
          projection: projection(ix.projection, `${k}.global_secondary_indexes[${i}].projection`),
        })),
        ttlAttribute: typeof t.time_to_live_attribute === 'string' ? t.time_to_live_attribute : undefined,
      };
    });
}
