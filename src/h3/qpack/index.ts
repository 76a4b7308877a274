/** QPACK (RFC 9204): field compression for HTTP/3. */

export type { QpackDecodeResult, QpackDecoderOptions, QpackField } from "./decoder.ts";
export { QpackDecoder } from "./decoder.ts";
export { DynamicTable, ENTRY_OVERHEAD, EncoderDynamicTable, entrySize } from "./dynamic-table.ts";
export type {
  QpackEncodeOptions,
  QpackEncoderOptions,
  QpackFieldInput,
  QpackPeerSettings,
} from "./encoder.ts";
export { QpackEncoder } from "./encoder.ts";
export { QpackError, QpackErrorCode, QpackFieldSectionTooLargeError } from "./errors.ts";
export {
  HUFFMAN_INVALID,
  HUFFMAN_TOO_LONG,
  huffmanDecode,
  huffmanDecodeInto,
  huffmanEncode,
  huffmanEncodedLength,
  huffmanEncodeInto,
} from "./huffman.ts";
export {
  bytesToString,
  INCOMPLETE,
  isByteString,
  QpackReader,
  QpackWriter,
  stringToBytes,
} from "./prefix-int.ts";
export { STATIC_TABLE, STATIC_TABLE_SIZE, staticFindExact, staticFindName } from "./static-table.ts";
