/**
 * The in-memory index of the fs-log adapter: every live key, in unsigned byte
 * order, mapped to its latest value (held inline when small) or to where that
 * value sits in a segment file. It is rebuilt on open from the checkpoint plus
 * the log tail, so it never needs to be written except as a checkpoint.
 */

/** Where a value larger than the inline limit lives on disk. */
export interface ValueRef {
  segment: number;
  /** Byte offset of the value inside the segment file. */
  offset: number;
  length: number;
  /** CRC32C of the value, re-checked after every read from disk. */
  crc: number;
}

/** An index entry: the value itself, or a reference to it. */
export type IndexEntry = Uint8Array | ValueRef;

import { SortedKeyMap } from "../../src/storage/sorted-map.ts";

export { fromKeyString, keyAtLeast, toKeyString } from "../../src/storage/sorted-map.ts";

/** The fs-log index: every live key mapped to its value or its place on disk. */
export class KeyIndex extends SortedKeyMap<IndexEntry> {}
