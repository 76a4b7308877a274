/**
 * The HPACK static Huffman code (RFC 7541 §5.2, Appendix B), used unmodified by QPACK string
 * literals (RFC 9204 §4.1.2).
 *
 * The table below lists the 257 codes (symbols 0–255 and EOS = 256) as `code, bit length`, the
 * code right-aligned (LSB). It is a canonical Huffman code: within one length, codes increase with
 * the symbol value, and the code is complete (EOS is the 30-bit all-ones code). The tests check
 * those properties and the RFC 7541 Appendix C.4/C.6 vectors.
 *
 * Decoding uses a 4-bit state machine built once at module load from the code tree: 256 states
 * (the internal nodes of the tree) × 16 nibbles, each transition giving the next state, at most
 * one emitted symbol (the shortest code has 5 bits), and whether the string may end there.
 */
import { QuicUsageError } from "../../quic/errors.ts";
import { decompressionFailed } from "./errors.ts";

// biome-ignore format: one symbol per line, as in RFC 7541 Appendix B
const TABLE: readonly number[] = [
  0x1ff8, 13, // (0) 0
  0x7fffd8, 23, // (1) 1
  0xfffffe2, 28, // (2) 2
  0xfffffe3, 28, // (3) 3
  0xfffffe4, 28, // (4) 4
  0xfffffe5, 28, // (5) 5
  0xfffffe6, 28, // (6) 6
  0xfffffe7, 28, // (7) 7
  0xfffffe8, 28, // (8) 8
  0xffffea, 24, // (9) 9
  0x3ffffffc, 30, // (10) 10
  0xfffffe9, 28, // (11) 11
  0xfffffea, 28, // (12) 12
  0x3ffffffd, 30, // (13) 13
  0xfffffeb, 28, // (14) 14
  0xfffffec, 28, // (15) 15
  0xfffffed, 28, // (16) 16
  0xfffffee, 28, // (17) 17
  0xfffffef, 28, // (18) 18
  0xffffff0, 28, // (19) 19
  0xffffff1, 28, // (20) 20
  0xffffff2, 28, // (21) 21
  0x3ffffffe, 30, // (22) 22
  0xffffff3, 28, // (23) 23
  0xffffff4, 28, // (24) 24
  0xffffff5, 28, // (25) 25
  0xffffff6, 28, // (26) 26
  0xffffff7, 28, // (27) 27
  0xffffff8, 28, // (28) 28
  0xffffff9, 28, // (29) 29
  0xffffffa, 28, // (30) 30
  0xffffffb, 28, // (31) 31
  0x14, 6, // (32) 32
  0x3f8, 10, // (33) '!'
  0x3f9, 10, // (34) '"'
  0xffa, 12, // (35) '#'
  0x1ff9, 13, // (36) '$'
  0x15, 6, // (37) '%'
  0xf8, 8, // (38) '&'
  0x7fa, 11, // (39) '''
  0x3fa, 10, // (40) '('
  0x3fb, 10, // (41) ')'
  0xf9, 8, // (42) '*'
  0x7fb, 11, // (43) '+'
  0xfa, 8, // (44) ','
  0x16, 6, // (45) '-'
  0x17, 6, // (46) '.'
  0x18, 6, // (47) '/'
  0x0, 5, // (48) '0'
  0x1, 5, // (49) '1'
  0x2, 5, // (50) '2'
  0x19, 6, // (51) '3'
  0x1a, 6, // (52) '4'
  0x1b, 6, // (53) '5'
  0x1c, 6, // (54) '6'
  0x1d, 6, // (55) '7'
  0x1e, 6, // (56) '8'
  0x1f, 6, // (57) '9'
  0x5c, 7, // (58) ':'
  0xfb, 8, // (59) ';'
  0x7ffc, 15, // (60) '<'
  0x20, 6, // (61) '='
  0xffb, 12, // (62) '>'
  0x3fc, 10, // (63) '?'
  0x1ffa, 13, // (64) '@'
  0x21, 6, // (65) 'A'
  0x5d, 7, // (66) 'B'
  0x5e, 7, // (67) 'C'
  0x5f, 7, // (68) 'D'
  0x60, 7, // (69) 'E'
  0x61, 7, // (70) 'F'
  0x62, 7, // (71) 'G'
  0x63, 7, // (72) 'H'
  0x64, 7, // (73) 'I'
  0x65, 7, // (74) 'J'
  0x66, 7, // (75) 'K'
  0x67, 7, // (76) 'L'
  0x68, 7, // (77) 'M'
  0x69, 7, // (78) 'N'
  0x6a, 7, // (79) 'O'
  0x6b, 7, // (80) 'P'
  0x6c, 7, // (81) 'Q'
  0x6d, 7, // (82) 'R'
  0x6e, 7, // (83) 'S'
  0x6f, 7, // (84) 'T'
  0x70, 7, // (85) 'U'
  0x71, 7, // (86) 'V'
  0x72, 7, // (87) 'W'
  0xfc, 8, // (88) 'X'
  0x73, 7, // (89) 'Y'
  0xfd, 8, // (90) 'Z'
  0x1ffb, 13, // (91) '['
  0x7fff0, 19, // (92) '\'
  0x1ffc, 13, // (93) ']'
  0x3ffc, 14, // (94) '^'
  0x22, 6, // (95) '_'
  0x7ffd, 15, // (96) '`'
  0x3, 5, // (97) 'a'
  0x23, 6, // (98) 'b'
  0x4, 5, // (99) 'c'
  0x24, 6, // (100) 'd'
  0x5, 5, // (101) 'e'
  0x25, 6, // (102) 'f'
  0x26, 6, // (103) 'g'
  0x27, 6, // (104) 'h'
  0x6, 5, // (105) 'i'
  0x74, 7, // (106) 'j'
  0x75, 7, // (107) 'k'
  0x28, 6, // (108) 'l'
  0x29, 6, // (109) 'm'
  0x2a, 6, // (110) 'n'
  0x7, 5, // (111) 'o'
  0x2b, 6, // (112) 'p'
  0x76, 7, // (113) 'q'
  0x2c, 6, // (114) 'r'
  0x8, 5, // (115) 's'
  0x9, 5, // (116) 't'
  0x2d, 6, // (117) 'u'
  0x77, 7, // (118) 'v'
  0x78, 7, // (119) 'w'
  0x79, 7, // (120) 'x'
  0x7a, 7, // (121) 'y'
  0x7b, 7, // (122) 'z'
  0x7ffe, 15, // (123) '{'
  0x7fc, 11, // (124) '|'
  0x3ffd, 14, // (125) '}'
  0x1ffd, 13, // (126) '~'
  0xffffffc, 28, // (127) 127
  0xfffe6, 20, // (128) 128
  0x3fffd2, 22, // (129) 129
  0xfffe7, 20, // (130) 130
  0xfffe8, 20, // (131) 131
  0x3fffd3, 22, // (132) 132
  0x3fffd4, 22, // (133) 133
  0x3fffd5, 22, // (134) 134
  0x7fffd9, 23, // (135) 135
  0x3fffd6, 22, // (136) 136
  0x7fffda, 23, // (137) 137
  0x7fffdb, 23, // (138) 138
  0x7fffdc, 23, // (139) 139
  0x7fffdd, 23, // (140) 140
  0x7fffde, 23, // (141) 141
  0xffffeb, 24, // (142) 142
  0x7fffdf, 23, // (143) 143
  0xffffec, 24, // (144) 144
  0xffffed, 24, // (145) 145
  0x3fffd7, 22, // (146) 146
  0x7fffe0, 23, // (147) 147
  0xffffee, 24, // (148) 148
  0x7fffe1, 23, // (149) 149
  0x7fffe2, 23, // (150) 150
  0x7fffe3, 23, // (151) 151
  0x7fffe4, 23, // (152) 152
  0x1fffdc, 21, // (153) 153
  0x3fffd8, 22, // (154) 154
  0x7fffe5, 23, // (155) 155
  0x3fffd9, 22, // (156) 156
  0x7fffe6, 23, // (157) 157
  0x7fffe7, 23, // (158) 158
  0xffffef, 24, // (159) 159
  0x3fffda, 22, // (160) 160
  0x1fffdd, 21, // (161) 161
  0xfffe9, 20, // (162) 162
  0x3fffdb, 22, // (163) 163
  0x3fffdc, 22, // (164) 164
  0x7fffe8, 23, // (165) 165
  0x7fffe9, 23, // (166) 166
  0x1fffde, 21, // (167) 167
  0x7fffea, 23, // (168) 168
  0x3fffdd, 22, // (169) 169
  0x3fffde, 22, // (170) 170
  0xfffff0, 24, // (171) 171
  0x1fffdf, 21, // (172) 172
  0x3fffdf, 22, // (173) 173
  0x7fffeb, 23, // (174) 174
  0x7fffec, 23, // (175) 175
  0x1fffe0, 21, // (176) 176
  0x1fffe1, 21, // (177) 177
  0x3fffe0, 22, // (178) 178
  0x1fffe2, 21, // (179) 179
  0x7fffed, 23, // (180) 180
  0x3fffe1, 22, // (181) 181
  0x7fffee, 23, // (182) 182
  0x7fffef, 23, // (183) 183
  0xfffea, 20, // (184) 184
  0x3fffe2, 22, // (185) 185
  0x3fffe3, 22, // (186) 186
  0x3fffe4, 22, // (187) 187
  0x7ffff0, 23, // (188) 188
  0x3fffe5, 22, // (189) 189
  0x3fffe6, 22, // (190) 190
  0x7ffff1, 23, // (191) 191
  0x3ffffe0, 26, // (192) 192
  0x3ffffe1, 26, // (193) 193
  0xfffeb, 20, // (194) 194
  0x7fff1, 19, // (195) 195
  0x3fffe7, 22, // (196) 196
  0x7ffff2, 23, // (197) 197
  0x3fffe8, 22, // (198) 198
  0x1ffffec, 25, // (199) 199
  0x3ffffe2, 26, // (200) 200
  0x3ffffe3, 26, // (201) 201
  0x3ffffe4, 26, // (202) 202
  0x7ffffde, 27, // (203) 203
  0x7ffffdf, 27, // (204) 204
  0x3ffffe5, 26, // (205) 205
  0xfffff1, 24, // (206) 206
  0x1ffffed, 25, // (207) 207
  0x7fff2, 19, // (208) 208
  0x1fffe3, 21, // (209) 209
  0x3ffffe6, 26, // (210) 210
  0x7ffffe0, 27, // (211) 211
  0x7ffffe1, 27, // (212) 212
  0x3ffffe7, 26, // (213) 213
  0x7ffffe2, 27, // (214) 214
  0xfffff2, 24, // (215) 215
  0x1fffe4, 21, // (216) 216
  0x1fffe5, 21, // (217) 217
  0x3ffffe8, 26, // (218) 218
  0x3ffffe9, 26, // (219) 219
  0xffffffd, 28, // (220) 220
  0x7ffffe3, 27, // (221) 221
  0x7ffffe4, 27, // (222) 222
  0x7ffffe5, 27, // (223) 223
  0xfffec, 20, // (224) 224
  0xfffff3, 24, // (225) 225
  0xfffed, 20, // (226) 226
  0x1fffe6, 21, // (227) 227
  0x3fffe9, 22, // (228) 228
  0x1fffe7, 21, // (229) 229
  0x1fffe8, 21, // (230) 230
  0x7ffff3, 23, // (231) 231
  0x3fffea, 22, // (232) 232
  0x3fffeb, 22, // (233) 233
  0x1ffffee, 25, // (234) 234
  0x1ffffef, 25, // (235) 235
  0xfffff4, 24, // (236) 236
  0xfffff5, 24, // (237) 237
  0x3ffffea, 26, // (238) 238
  0x7ffff4, 23, // (239) 239
  0x3ffffeb, 26, // (240) 240
  0x7ffffe6, 27, // (241) 241
  0x3ffffec, 26, // (242) 242
  0x3ffffed, 26, // (243) 243
  0x7ffffe7, 27, // (244) 244
  0x7ffffe8, 27, // (245) 245
  0x7ffffe9, 27, // (246) 246
  0x7ffffea, 27, // (247) 247
  0x7ffffeb, 27, // (248) 248
  0xffffffe, 28, // (249) 249
  0x7ffffec, 27, // (250) 250
  0x7ffffed, 27, // (251) 251
  0x7ffffee, 27, // (252) 252
  0x7ffffef, 27, // (253) 253
  0x7fffff0, 27, // (254) 254
  0x3ffffee, 26, // (255) 255
  0x3fffffff, 30, // (256) EOS
];

/** The EOS symbol (RFC 7541 §5.2). */
export const HUFFMAN_EOS = 256;

/** Code of each symbol 0..256, right-aligned. */
export const HUFFMAN_CODES: Uint32Array = new Uint32Array(257);
/** Bit length of each symbol's code, 5..30. */
export const HUFFMAN_LENGTHS: Uint8Array = new Uint8Array(257);
for (let s = 0; s < 257; s++) {
  HUFFMAN_CODES[s] = TABLE[2 * s];
  HUFFMAN_LENGTHS[s] = TABLE[2 * s + 1];
}

// ---------------------------------------------------------------------------------------------
// Decoder state machine

const F_EMIT = 1 << 16; // the transition completes a symbol (bits 8..15)
const F_FAIL = 1 << 17; // the transition decodes EOS: an error (RFC 7541 §5.2)
const F_ACCEPT = 1 << 18; // the string may end in the resulting state (valid padding)

/** `DECODE[(state << 4) | nibble]`: next state (bits 0..7), symbol, flags. */
const DECODE: Uint32Array = buildDecodeTable();

function buildDecodeTable(): Uint32Array {
  // Code tree: internal nodes 0..255 (0 = root); a child ≥ 0 is an internal node, a child < 0 is
  // the leaf of symbol −child − 1.
  const child = new Int32Array(256 * 2);
  const depth = new Uint8Array(256);
  const allOnes = new Uint8Array(256);
  allOnes[0] = 1;
  let nodes = 1;
  for (let sym = 0; sym < 257; sym++) {
    const code = HUFFMAN_CODES[sym];
    const len = HUFFMAN_LENGTHS[sym];
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = (code >>> i) & 1;
      const slot = node * 2 + bit;
      if (i === 0) {
        if (child[slot] !== 0) throw new Error("huffman: code is not prefix-free");
        child[slot] = -sym - 1;
      } else {
        let next = child[slot];
        if (next < 0) throw new Error("huffman: code is not prefix-free");
        if (next === 0) {
          next = nodes++;
          if (next > 255) throw new Error("huffman: too many nodes");
          child[slot] = next;
          depth[next] = depth[node] + 1;
          allOnes[next] = allOnes[node] & bit;
        }
        node = next;
      }
    }
  }
  if (nodes !== 256) throw new Error("huffman: code is not complete");
  const table = new Uint32Array(256 * 16);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let i = 3; i >= 0; i--) {
        const next = child[node * 2 + ((nibble >>> i) & 1)];
        if (next < 0) {
          const sym = -next - 1;
          if (sym === HUFFMAN_EOS) {
            entry = F_FAIL;
            break;
          }
          entry = F_EMIT | (sym << 8);
          node = 0;
        } else {
          node = next;
        }
      }
      if (entry & F_FAIL) {
        table[(state << 4) | nibble] = F_FAIL;
        continue;
      }
      // RFC 7541 §5.2: padding is the most significant bits of EOS (all ones) and at most 7 bits.
      if (node === 0 || (allOnes[node] === 1 && depth[node] <= 7)) entry |= F_ACCEPT;
      table[(state << 4) | nibble] = entry | node;
    }
  }
  return table;
}

/** {@link huffmanDecodeInto}: invalid code (EOS in the string, bad or over-long padding). */
export const HUFFMAN_INVALID = -1;
/** {@link huffmanDecodeInto}: the decoded string does not fit in the destination. */
export const HUFFMAN_TOO_LONG = -2;

/**
 * Decodes the Huffman-coded bytes `src[start, end)` into `dst[dstPos, dstEnd)`. Returns the
 * position after the last decoded byte, {@link HUFFMAN_INVALID} if the input contains EOS or its
 * padding is longer than 7 bits or not all ones (RFC 7541 §5.2: MUST be treated as a decoding
 * error), or {@link HUFFMAN_TOO_LONG} as soon as the output would pass `dstEnd`. Never throws,
 * never allocates.
 */
export function huffmanDecodeInto(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  dstPos: number,
  dstEnd: number,
): number {
  let state = 0;
  let accept = F_ACCEPT;
  let o = dstPos;
  for (let i = start; i < end; i++) {
    const b = src[i];
    let t = DECODE[(state << 4) | (b >>> 4)];
    if (t & F_FAIL) return HUFFMAN_INVALID;
    if (t & F_EMIT) {
      if (o >= dstEnd) return HUFFMAN_TOO_LONG;
      dst[o++] = t >>> 8;
    }
    state = t & 0xff;
    t = DECODE[(state << 4) | (b & 0x0f)];
    if (t & F_FAIL) return HUFFMAN_INVALID;
    if (t & F_EMIT) {
      if (o >= dstEnd) return HUFFMAN_TOO_LONG;
      dst[o++] = t >>> 8;
    }
    state = t & 0xff;
    accept = t & F_ACCEPT;
  }
  return accept ? o : HUFFMAN_INVALID;
}

/** Upper bound of the decoded length of `encodedLength` Huffman bytes (5-bit shortest code). */
export function huffmanMaxDecodedLength(encodedLength: number): number {
  return Math.floor((encodedLength * 8) / 5);
}

/**
 * Decodes Huffman-coded bytes into a new array. Throws a {@link QpackError}
 * (QPACK_DECOMPRESSION_FAILED) on an invalid code.
 */
export function huffmanDecode(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(huffmanMaxDecodedLength(src.length));
  const n = huffmanDecodeInto(src, 0, src.length, out, 0, out.length);
  if (n < 0) throw decompressionFailed("invalid Huffman code");
  return out.slice(0, n);
}

// ---------------------------------------------------------------------------------------------
// Encoder

/**
 * Length in bytes of the Huffman encoding of `s`, a byte string (every char code ≤ 0xff, one
 * char per octet). Throws {@link QuicUsageError} for a char code above 0xff.
 */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new QuicUsageError(`field string has a char above 0xff at ${i}`);
    bits += HUFFMAN_LENGTHS[c];
  }
  return (bits + 7) >>> 3;
}

/**
 * Writes the Huffman encoding of the byte string `s` (char codes ≤ 0xff, unchecked: see
 * {@link huffmanEncodedLength}) at `dst[pos]`, padded with the most significant bits of EOS
 * (RFC 7541 §5.2). The caller provides {@link huffmanEncodedLength} bytes. Returns the end
 * position.
 */
export function huffmanEncodeInto(s: string, dst: Uint8Array, pos: number): number {
  let acc = 0; // pending bits, right-aligned; fewer than 8 between symbols
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) & 0xff;
    const len = HUFFMAN_LENGTHS[c];
    const code = HUFFMAN_CODES[c];
    if (len > 24) {
      // Keep acc within 31 bits: push the high bits first.
      const hi = len - 24;
      acc = (acc << hi) | (code >>> 24);
      n += hi;
      while (n >= 8) {
        n -= 8;
        dst[pos++] = acc >>> n;
      }
      acc = ((acc & ((1 << n) - 1)) << 24) | (code & 0xffffff);
      n += 24;
    } else {
      acc = (acc << len) | code;
      n += len;
    }
    while (n >= 8) {
      n -= 8;
      dst[pos++] = acc >>> n;
    }
    acc &= (1 << n) - 1;
  }
  if (n > 0) dst[pos++] = (acc << (8 - n)) | (0xff >>> n);
  return pos;
}

/** Huffman-encodes the byte string `s` (char codes ≤ 0xff) into a new array. */
export function huffmanEncode(s: string): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(s));
  huffmanEncodeInto(s, out, 0);
  return out;
}
