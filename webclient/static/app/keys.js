// The phone's identity, as docs/protocol.md §4 and §5 define it: the
// Ed25519 device key (WebCrypto, extractable: false, kept in IndexedDB),
// its DeviceID and the PhoneIdHash of the phone number.
//
// The private key is created by the browser and never leaves it: WebCrypto
// refuses to export a key made with extractable: false, and IndexedDB
// stores the CryptoKey object itself, not its bytes.

const enc = new TextEncoder();

// --- encodings -----------------------------------------------------------

export function b64url(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// b64urlDecode is strict: base64url without padding, nothing else.
export function b64urlDecode(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) {
    throw new AppError('invalid', 'bad_encoding', 'Not base64url.');
  }
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

export function fromHex(s) {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
  return out;
}

// AppError mirrors qrauth.Error: a class (code), an exact cause (reason)
// and a sentence for people (message).
export class AppError extends Error {
  constructor(code, reason, message) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

// --- §4 PhoneIdHash ------------------------------------------------------

// normalizePhone is qrauth.NormalizePhone (phone.go, protocol §4.1).
export function normalizePhone(input) {
  let s = String(input).trim();
  if (s.startsWith('00')) s = '+' + s.slice(2);
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '+' && i === 0) out += c;
    else if (c >= '0' && c <= '9') out += c;
    else if (' -./()'.includes(c)) continue;
    else throw new AppError('invalid', 'invalid_phone', 'Use only digits, spaces and + - . / ( ) in the phone number.');
  }
  if (!out.startsWith('+') || out.length < 9 || out.length > 16) {
    throw new AppError('invalid', 'invalid_phone', 'Enter the whole number with its country code: 8 to 15 digits after +.');
  }
  return out;
}

// phoneIdHash = lowercase hex of HMAC-SHA256(base64url_decode(salt), E.164).
export async function phoneIdHash(saltB64url, e164) {
  const key = await crypto.subtle.importKey('raw', b64urlDecode(saltB64url), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return hex(await crypto.subtle.sign('HMAC', key, enc.encode(e164)));
}

// --- §5 DeviceID ---------------------------------------------------------

// deviceIdFromPublicKey: "d_" + base64url(SHA-256(raw public key)[0:16]).
export async function deviceIdFromPublicKey(raw) {
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', raw));
  return 'd_' + b64url(h.slice(0, 16));
}

// --- the key -------------------------------------------------------------

export function ed25519Supported() {
  return !!(window.crypto && crypto.subtle && window.isSecureContext);
}

// newDeviceKey makes the device key. Only the public half can be exported
// (WebCrypto always allows that); the private half is extractable: false.
export async function newDeviceKey() {
  let pair;
  try {
    pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  } catch (e) {
    throw new AppError('internal', 'no_ed25519', 'This browser cannot make Ed25519 keys. Update it, or use another browser.');
  }
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, publicKeyRaw: raw, deviceId: await deviceIdFromPublicKey(raw) };
}

export async function sign(privateKey, bytes) {
  return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, privateKey, bytes));
}

// --- IndexedDB -----------------------------------------------------------

const DB = 'qrauth-app';
const STORE = 'device';
const RECORD = 'device';

function openDB() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, fn) {
  const db = await openDB();
  try {
    return await new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const req = fn(t.objectStore(STORE));
      t.oncomplete = () => resolve(req && req.result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  } finally {
    db.close();
  }
}

// loadDevice returns the stored device or null. A device is
// {origin, phone, phoneIdHash, name, privateKey, publicKey, publicKeyRaw,
// deviceId, created}.
export async function loadDevice() {
  return (await tx('readonly', (s) => s.get(RECORD))) || null;
}

export async function saveDevice(dev) {
  await tx('readwrite', (s) => s.put(dev, RECORD));
}

export async function deleteDevice() {
  await tx('readwrite', (s) => s.delete(RECORD));
}

// hasDevice answers without creating anything visible: the /q/ page uses it
// to decide between the approval screen and the set-up offer.
export async function hasDevice() {
  try {
    // Look before opening: opening would create an empty database in a
    // browser that never ran the app.
    if (indexedDB.databases && !(await indexedDB.databases()).some((d) => d.name === DB)) return false;
    return !!(await loadDevice());
  } catch (_) {
    return false;
  }
}

// persistStorage asks the browser not to evict our storage (the key lives
// there) and returns whether it is persisted.
export async function persistStorage() {
  if (!navigator.storage || !navigator.storage.persist) return false;
  try {
    if (await navigator.storage.persisted()) return true;
    return await navigator.storage.persist();
  } catch (_) {
    return false;
  }
}
