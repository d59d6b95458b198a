/**
 * The read side of the Bun SQLite adapter: point gets, range scans and
 * "greatest key in each range" lookups on the calling thread's connection,
 * with prepared statements made once per query shape. WAL mode lets these
 * run beside the writer and see every committed transaction.
 */
import { assertRanges, assertScanOptions, compareBytes, type KeyRange, type KvPair, type ScanOptions } from "../../src/storage/index.ts";

// Structural view of the bun:sqlite API we use, so this file type-checks
// without Bun's types and the import stays lazy.
interface SqliteStatement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): unknown;
}
export interface SqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
  close(): void;
}

/**
 * Reverse scans with both bounds and at most this limit (the ledger's "newest
 * version of a key" reads) run as `k < end ORDER BY k DESC` and drop rows below
 * `start` here: SQLite answered that in about half the time of the two-bound
 * query (3.3 against 6.4 µs on 300,000 rows), at the price of reading at most
 * this many rows past the range.
 */
const REVERSE_SCAN_END_ONLY_LIMIT_MAX = 8;
/** Ranges answered by one lastInRanges statement (3 parameters each). */
const RANGES_PER_STATEMENT = 64;

type Row = { k: Uint8Array; v: Uint8Array };
const toBytes = (value: unknown): Uint8Array => new Uint8Array(value as Uint8Array);
const toPair = (row: Row): KvPair => ({ key: toBytes(row.k), value: toBytes(row.v) });

/** Reads of the kv table through one connection. */
export class SqliteReader {
  readonly #db: SqliteDatabase;
  readonly #get: SqliteStatement;
  readonly #size: SqliteStatement;
  readonly #scanStatements = new Map<string, SqliteStatement>();
  readonly #lastStatements = new Map<number, SqliteStatement>();

  constructor(db: SqliteDatabase) {
    this.#db = db;
    this.#get = db.prepare("SELECT v FROM kv WHERE k = ?");
    this.#size = db.prepare("SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()");
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const row = this.#get.get(key) as { v: Uint8Array } | null;
    return row === null ? undefined : toBytes(row.v);
  }

  scan(options: ScanOptions): KvPair[] {
    assertScanOptions(options);
    const { start, end, limit } = options;
    const hasStart = start !== undefined;
    const hasEnd = end !== undefined;
    if (options.reverse === true && hasStart && hasEnd && limit <= REVERSE_SCAN_END_ONLY_LIMIT_MAX) {
      const out: KvPair[] = [];
      for (const row of this.#scanStatement(false, true, true).all(end, limit) as Row[]) {
        // Descending: once a row is below start, so is every later one.
        if (compareBytes(row.k, start!) < 0) break;
        out.push(toPair(row));
      }
      return out;
    }
    const statement = this.#scanStatement(hasStart, hasEnd, options.reverse === true);
    const rows = (hasStart ? (hasEnd ? statement.all(start, end, limit) : statement.all(start, limit)) : hasEnd ? statement.all(end, limit) : statement.all(limit)) as Row[];
    return rows.map(toPair);
  }

  lastInRanges(ranges: readonly KeyRange[]): Array<KvPair | undefined> {
    assertRanges(ranges);
    const out: Array<KvPair | undefined> = new Array(ranges.length).fill(undefined);
    for (let first = 0; first < ranges.length; first += RANGES_PER_STATEMENT) {
      const count = Math.min(RANGES_PER_STATEMENT, ranges.length - first);
      const params: unknown[] = [];
      for (let i = first; i < first + count; i++) params.push(i, ranges[i]!.start, ranges[i]!.end);
      for (const row of this.#lastStatement(count).all(...params) as Array<Row & { i: number }>) out[row.i] = toPair(row);
    }
    return out;
  }

  sizeBytes(): number {
    const row = this.#size.get() as { bytes: number } | null;
    return row?.bytes ?? 0;
  }

  #scanStatement(hasStart: boolean, hasEnd: boolean, reverse: boolean): SqliteStatement {
    const id = `${hasStart}/${hasEnd}/${reverse}`;
    let statement = this.#scanStatements.get(id);
    if (statement === undefined) {
      // Positional parameters, in the order scan() passes them: binding by position is cheaper than by name.
      const where = [hasStart ? "k >= ?" : "", hasEnd ? "k < ?" : ""].filter(Boolean).join(" AND ");
      const sql = `SELECT k, v FROM kv ${where ? `WHERE ${where}` : ""} ORDER BY k ${reverse ? "DESC" : "ASC"} LIMIT ?`;
      statement = this.#db.prepare(sql);
      this.#scanStatements.set(id, statement);
    }
    return statement;
  }

  /**
   * One statement answering `count` ranges (each a subquery for the range's greatest key), about 5x cheaper per
   * range than one reverse scan each; one per batch size, made on first use.
   */
  #lastStatement(count: number): SqliteStatement {
    let statement = this.#lastStatements.get(count);
    if (statement === undefined) {
      const ranges = Array.from({ length: count }, (_, i) => (i === 0 ? "SELECT ? AS i, ? AS s, ? AS e" : "SELECT ?, ?, ?")).join(" UNION ALL ");
      statement = this.#db.prepare(`SELECT q.i AS i, kv.k AS k, kv.v AS v FROM (${ranges}) q JOIN kv ON kv.k = (SELECT max(k) FROM kv WHERE k >= q.s AND k < q.e)`);
      this.#lastStatements.set(count, statement);
    }
    return statement;
  }
}
