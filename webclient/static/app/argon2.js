// Argon2id (RFC 9106, version 0x13) and the BLAKE2b it is built on (RFC
// 7693), in plain JavaScript: the OFFLINE_PIN key is wrapped under
// Argon2id(PIN, salt) exactly as appclient does it (golang.org/x/crypto/
// argon2.IDKey), and WebCrypto has no Argon2. One lane only (threads = 1,
// which is what appclient uses); tested against Go's output.
//
// 64-bit words are kept as (low, high) pairs of 32-bit numbers in
// Uint32Arrays: word i is [2i] (low) and [2i+1] (high).

// --- BLAKE2b --------------------------------------------------------------

const IV = new Uint32Array([
  0xf3bcc908, 0x6a09e667, 0x84caa73b, 0xbb67ae85, 0xfe94f82b, 0x3c6ef372, 0x5f1d36f1, 0xa54ff53a,
  0xade682d1, 0x510e527f, 0x2b3e6c1f, 0x9b05688c, 0xfb41bd6b, 0x1f83d9ab, 0x137e2179, 0x5be0cd19,
]);

const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

// add64 sets word a of v to v[a] + v[b] (+ the word (lo, hi)).
function add64(v, a, b, lo, hi) {
  const l = v[2 * a] + v[2 * b] + lo;
  v[2 * a + 1] = v[2 * a + 1] + v[2 * b + 1] + hi + (l > 0xffffffff ? (l > 0x1ffffffff ? 2 : 1) : 0);
  v[2 * a] = l;
}

// xorRot sets word d of v to rotr64(v[d] ^ v[a], n).
function xorRot(v, d, a, n) {
  const lo = v[2 * d] ^ v[2 * a];
  const hi = v[2 * d + 1] ^ v[2 * a + 1];
  if (n === 32) {
    v[2 * d] = hi;
    v[2 * d + 1] = lo;
  } else if (n < 32) {
    v[2 * d] = (lo >>> n) | (hi << (32 - n));
    v[2 * d + 1] = (hi >>> n) | (lo << (32 - n));
  } else { // 63: rotate left by one
    v[2 * d] = (lo << 1) | (hi >>> 31);
    v[2 * d + 1] = (hi << 1) | (lo >>> 31);
  }
}

function blakeG(v, m, a, b, c, d, x, y) {
  add64(v, a, b, m[2 * x], m[2 * x + 1]);
  xorRot(v, d, a, 32);
  add64(v, c, d, 0, 0);
  xorRot(v, b, c, 24);
  add64(v, a, b, m[2 * y], m[2 * y + 1]);
  xorRot(v, d, a, 16);
  add64(v, c, d, 0, 0);
  xorRot(v, b, c, 63);
}

function compress(h, block, count, last) {
  const v = new Uint32Array(32);
  v.set(h);
  v.set(IV, 16);
  v[24] ^= count >>> 0;
  v[25] ^= Math.floor(count / 0x100000000);
  if (last) {
    v[28] ^= 0xffffffff;
    v[29] ^= 0xffffffff;
  }
  const m = new Uint32Array(32);
  for (let i = 0; i < 32; i++) {
    m[i] = block[4 * i] | (block[4 * i + 1] << 8) | (block[4 * i + 2] << 16) | (block[4 * i + 3] << 24);
  }
  for (let r = 0; r < 12; r++) {
    const s = SIGMA[r % 10];
    blakeG(v, m, 0, 4, 8, 12, s[0], s[1]);
    blakeG(v, m, 1, 5, 9, 13, s[2], s[3]);
    blakeG(v, m, 2, 6, 10, 14, s[4], s[5]);
    blakeG(v, m, 3, 7, 11, 15, s[6], s[7]);
    blakeG(v, m, 0, 5, 10, 15, s[8], s[9]);
    blakeG(v, m, 1, 6, 11, 12, s[10], s[11]);
    blakeG(v, m, 2, 7, 8, 13, s[12], s[13]);
    blakeG(v, m, 3, 4, 9, 14, s[14], s[15]);
  }
  for (let i = 0; i < 16; i++) h[i] ^= v[i] ^ v[i + 16];
}

// blake2b returns the unkeyed BLAKE2b hash of data, outLen (1–64) bytes.
export function blake2b(data, outLen) {
  const h = new Uint32Array(IV);
  h[0] ^= 0x01010000 ^ outLen;
  const block = new Uint8Array(128);
  let off = 0;
  // Every block but the last is compressed as it fills; the last one (maybe
  // empty, maybe full) carries the final flag.
  while (data.length - off > 128) {
    compress(h, data.subarray(off, off + 128), off + 128, false);
    off += 128;
  }
  block.fill(0);
  block.set(data.subarray(off));
  compress(h, block, data.length, true);
  const out = new Uint8Array(64);
  for (let i = 0; i < 16; i++) {
    out[4 * i] = h[i];
    out[4 * i + 1] = h[i] >>> 8;
    out[4 * i + 2] = h[i] >>> 16;
    out[4 * i + 3] = h[i] >>> 24;
  }
  return out.slice(0, outLen);
}

function le32(n) {
  return new Uint8Array([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]);
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// hashLong is H' of RFC 9106 §3.3: any output length from BLAKE2b.
function hashLong(input, outLen) {
  const x = concat([le32(outLen), input]);
  if (outLen <= 64) return blake2b(x, outLen);
  const out = new Uint8Array(outLen);
  let v = blake2b(x, 64);
  out.set(v.subarray(0, 32), 0);
  let o = 32;
  while (outLen - o > 64) {
    v = blake2b(v, 64);
    out.set(v.subarray(0, 32), o);
    o += 32;
  }
  out.set(blake2b(v, outLen - o), o);
  return out;
}

// --- the Argon2 compression function -------------------------------------

// fBlaMka sets word a of v to v[a] + v[b] + 2 * lo32(v[a]) * lo32(v[b]).
function fBlaMka(v, a, b) {
  const x = v[2 * a];
  const y = v[2 * b];
  // The 64-bit product of two 32-bit numbers, from 16-bit halves.
  const xl = x & 0xffff;
  const xh = x >>> 16;
  const yl = y & 0xffff;
  const yh = y >>> 16;
  const mid = xl * yh + xh * yl;
  const t = xl * yl + (mid % 0x10000) * 0x10000;
  let plo = t >>> 0;
  let phi = xh * yh + Math.floor(mid / 0x10000) + Math.floor(t / 0x100000000);
  // times two
  phi = ((phi << 1) | (plo >>> 31)) >>> 0;
  plo = (plo << 1) >>> 0;
  add64(v, a, b, plo, phi);
}

function mixG(v, a, b, c, d) {
  fBlaMka(v, a, b);
  xorRot(v, d, a, 32);
  fBlaMka(v, c, d);
  xorRot(v, b, c, 24);
  fBlaMka(v, a, b);
  xorRot(v, d, a, 16);
  fBlaMka(v, c, d);
  xorRot(v, b, c, 63);
}

// roundP is BLAKE2_ROUND_NOMSG on the 16 words w[0..15] of r (word indices).
function roundP(r, w) {
  mixG(r, w[0], w[4], w[8], w[12]);
  mixG(r, w[1], w[5], w[9], w[13]);
  mixG(r, w[2], w[6], w[10], w[14]);
  mixG(r, w[3], w[7], w[11], w[15]);
  mixG(r, w[0], w[5], w[10], w[15]);
  mixG(r, w[1], w[6], w[11], w[12]);
  mixG(r, w[2], w[7], w[8], w[13]);
  mixG(r, w[3], w[4], w[9], w[14]);
}

const ROWS = [];
const COLS = [];
for (let i = 0; i < 8; i++) {
  ROWS.push(Array.from({ length: 16 }, (_, j) => 16 * i + j));
  const c = [];
  for (let j = 0; j < 8; j++) c.push(2 * i + 16 * j, 2 * i + 16 * j + 1);
  COLS.push(c);
}

const R = new Uint32Array(256);
const Z = new Uint32Array(256);

// fillBlock: next = P(prev ^ ref) ^ prev ^ ref (^ next with xor), the
// blocks being 256-element views of memory.
function fillBlock(prev, ref, next, withXor) {
  for (let i = 0; i < 256; i++) R[i] = prev[i] ^ ref[i];
  Z.set(R);
  if (withXor) for (let i = 0; i < 256; i++) Z[i] ^= next[i];
  for (const w of ROWS) roundP(R, w);
  for (const w of COLS) roundP(R, w);
  for (let i = 0; i < 256; i++) next[i] = Z[i] ^ R[i];
}

// argon2id derives tagLen bytes from password and salt with time passes
// over memKiB KiB, one lane.
export function argon2id(password, salt, { time, memKiB, tagLen = 32 }) {
  const lanes = 1;
  const h0 = blake2b(concat([
    le32(lanes), le32(tagLen), le32(memKiB), le32(time), le32(0x13), le32(2),
    le32(password.length), password, le32(salt.length), salt, le32(0), le32(0),
  ]), 64);
  const blocks = 4 * lanes * Math.floor(memKiB / (4 * lanes));
  const seg = blocks / 4;
  const mem = new Uint32Array(blocks * 256);
  const block = (i) => mem.subarray(i * 256, i * 256 + 256);
  const load = (i, bytes) => {
    const b = block(i);
    for (let k = 0; k < 256; k++) b[k] = bytes[4 * k] | (bytes[4 * k + 1] << 8) | (bytes[4 * k + 2] << 16) | (bytes[4 * k + 3] << 24);
  };
  load(0, hashLong(concat([h0, le32(0), le32(0)]), 1024));
  load(1, hashLong(concat([h0, le32(1), le32(0)]), 1024));

  const zero = new Uint32Array(256);
  const input = new Uint32Array(256);
  const addr = new Uint32Array(256);
  for (let pass = 0; pass < time; pass++) {
    for (let slice = 0; slice < 4; slice++) {
      const independent = pass === 0 && slice < 2;
      if (independent) {
        input.fill(0);
        input[0] = pass;
        input[2] = 0; // lane
        input[4] = slice;
        input[6] = blocks;
        input[8] = time;
        input[10] = 2; // Argon2id
      }
      const nextAddresses = () => {
        input[12]++;
        fillBlock(zero, input, addr, false);
        fillBlock(zero, addr, addr, false);
      };
      let start = 0;
      if (pass === 0 && slice === 0) {
        start = 2;
        if (independent) nextAddresses();
      }
      for (let i = start; i < seg; i++) {
        const cur = slice * seg + i;
        const prev = cur === 0 ? blocks - 1 : cur - 1;
        let j1;
        if (independent) {
          if (i % 128 === 0) nextAddresses();
          j1 = addr[2 * (i % 128)];
        } else {
          j1 = mem[prev * 256];
        }
        let area;
        if (pass === 0) area = slice * seg + i - 1;
        else area = blocks - seg + i - 1;
        // relative = area - 1 - (area * (j1² >> 32) >> 32)
        const x = mulHi(j1, j1);
        const rel = area - 1 - mulHi(area, x);
        const startPos = pass === 0 || slice === 3 ? 0 : (slice + 1) * seg;
        const ref = (startPos + rel) % blocks;
        fillBlock(block(prev), block(ref), block(cur), pass > 0);
      }
    }
  }
  const last = block(blocks - 1);
  const c = new Uint8Array(1024);
  for (let k = 0; k < 256; k++) {
    c[4 * k] = last[k];
    c[4 * k + 1] = last[k] >>> 8;
    c[4 * k + 2] = last[k] >>> 16;
    c[4 * k + 3] = last[k] >>> 24;
  }
  return hashLong(c, tagLen);
}

// mulHi returns the high 32 bits of the 64-bit product of two 32-bit
// unsigned numbers.
function mulHi(a, b) {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const mid = al * bh + ah * bl;
  const t = al * bl + (mid % 0x10000) * 0x10000;
  return (ah * bh + Math.floor(mid / 0x10000) + Math.floor(t / 0x100000000)) >>> 0;
}
