/**
 * The crypto providers in one place: the default (node:crypto) and the portable pure-JS one.
 * Tests iterate over {@link cryptoProviders} to run every check against both.
 */
import { QuicUsageError } from "../errors.ts";
import { NobleCryptoProvider } from "./noble-provider.ts";
import { defaultCryptoProvider, NodeCryptoProvider } from "./node-provider.ts";
import type { CryptoProvider } from "./provider.ts";

export { defaultCryptoProvider, NobleCryptoProvider, NodeCryptoProvider };

export type CryptoProviderName = "node" | "noble";

const noble: CryptoProvider = new NobleCryptoProvider();

/** Every provider, the default (node:crypto) first. */
export const cryptoProviders: readonly CryptoProvider[] = Object.freeze([defaultCryptoProvider, noble]);

/** The shared instance of the provider called `name`. */
export function getCryptoProvider(name: CryptoProviderName): CryptoProvider {
  switch (name) {
    case "node":
      return defaultCryptoProvider;
    case "noble":
      return noble;
    default:
      throw new QuicUsageError(`unknown crypto provider ${String(name)}`);
  }
}
