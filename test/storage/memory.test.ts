import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { describeStorageConformance } from "./conformance.ts";

describeStorageConformance({
  name: "memory",
  durable: false,
  open: async () => createMemoryStorage(),
  makeLocation: async () => "",
  cleanup: async () => {},
});
