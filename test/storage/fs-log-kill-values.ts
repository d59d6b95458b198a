/** The value the kill -9 writer stores under `key`: deterministic, 1 to ~1.2 KiB, so some are inline and some on disk. */
export function killTestValue(key: string): Uint8Array {
  let hash = 2166136261;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 16777619) >>> 0;
  const value = new Uint8Array(1 + (hash % 1200));
  for (let i = 0; i < value.length; i++) value[i] = (hash >>> (i % 24)) ^ i;
  return value;
}
