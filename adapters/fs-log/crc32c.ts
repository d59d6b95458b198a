/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven with
 * slicing-by-8. Used to frame every record and checkpoint of the fs-log
 * adapter. It detects torn writes and bit rot; it is not a defence against
 * deliberate tampering (the Merkle layer is).
 */

const POLYNOMIAL_REFLECTED = 0x82f63b78;

// TABLES[k][b] = CRC of byte b followed by k zero bytes; TABLES[0] is the
// classic byte-at-a-time table. Slicing-by-8 folds eight input bytes per step.
const TABLES: Uint32Array[] = buildTables();

function buildTables(): Uint32Array[] {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL_REFLECTED : crc >>> 1;
    tables[0]![byte] = crc >>> 0;
  }
  for (let byte = 0; byte < 256; byte++) {
    for (let k = 1; k < 8; k++) {
      const previous = tables[k - 1]![byte]!;
      tables[k]![byte] = ((previous >>> 8) ^ tables[0]![previous & 0xff]!) >>> 0;
    }
  }
  return tables;
}

/**
 * Extend a running CRC32C with `data`. Start from `crc = 0`; the result of one
 * call can be passed back in to checksum data that arrives in pieces.
 */
export function crc32c(data: Uint8Array, crc = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array,
  ];
  let state = ~crc >>> 0;
  let i = 0;
  const end8 = data.length - (data.length % 8);
  for (; i < end8; i += 8) {
    const low = (state ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    state =
      t7[low & 0xff]! ^
      t6[(low >>> 8) & 0xff]! ^
      t5[(low >>> 16) & 0xff]! ^
      t4[low >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
  }
  for (; i < data.length; i++) state = t0[(state ^ data[i]!) & 0xff]! ^ (state >>> 8);
  return ~state >>> 0;
}
