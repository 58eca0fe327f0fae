// Offline codes and online transaction approval (docs/offline.md), as
// appclient/offline.go does them: activation by a device-signed call while
// online; later, with no network, the challenge's verification data is
// decoded strictly and the one-time code derived from the method key and
// the whole verification data. Transactions (ORIGIN/t/TOKEN) are fetched,
// shown and signed online.
//
// Keys on the phone:
//   OFFLINE_DEVICE: the method key imported into WebCrypto as an HMAC key
//     with extractable: false, kept (as the CryptoKey) in IndexedDB.
//   OFFLINE_PIN: wrapped = key XOR Argon2id(PIN, salt, t=2, m=19 MiB, p=1),
//     as appclient; nothing tells a right PIN from a wrong one (a wrong PIN
//     gives a wrong code, which only the server notices and counts).

import { AppError, b64url, b64urlDecode, hex, sign } from './keys.js';
import { argon2id } from './argon2.js';
import { canonicalOrigin, parseCodeURL, signedCall, signedLines } from './protocol.js';

const enc = new TextEncoder();

export const OFFLINE_DEVICE = 'OFFLINE_DEVICE';
export const OFFLINE_PIN = 'OFFLINE_PIN';
export const METHODS_PATH = '/api/app/offline';
export const APPROVALS_PATH = '/api/app/approvals';
export const TX_PATH = '/t/';
export const PIN_PARAMS = { time: 2, memory_kib: 19 * 1024, threads: 1 };
const MAX_CONTEXT = 200;

// --- verification data (docs/offline.md §3) ------------------------------

// Bidi_Control characters: they could make the context read differently
// from the text that was approved.
const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/;
// Control characters other than LF (C0, DEL, C1).
const CONTROL = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F]/;

// isOfflineCode tells a scanned text that looks like verification data
// (and not a URL) apart, before the strict decode.
export function isOfflineCode(text) {
  return /^1[A-Z][0-9]/.test(String(text));
}

// decodeVerificationData is qrauth.DecodeVerificationData: everything that
// is not exactly the format is refused.
export function decodeVerificationData(text) {
  const bad = new AppError('invalid', 'not_offline_code', 'This QR code is not a qrauth offline code.');
  const s = String(text);
  if (s.length < 13 || s[0] !== '1') throw bad;
  const method = s[1] === 'D' ? OFFLINE_DEVICE : s[1] === 'P' ? OFFLINE_PIN : null;
  if (!method || !/^[4-9]$/.test(s[2])) throw bad;
  const challenge = s.slice(3, 11);
  const hint = s.slice(11, 13);
  if (!/^[A-Za-z0-9_-]{8}$/.test(challenge) || !/^[A-Za-z0-9_-]{2}$/.test(hint)) throw bad;
  const context = s.slice(13);
  if (enc.encode(context).length > MAX_CONTEXT) {
    throw new AppError('invalid', 'context_too_long', 'The text of this code is too long to be a qrauth offline code.');
  }
  if (/[\uD800-\uDFFF]/.test(context.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) throw bad;
  if (CONTROL.test(context) || BIDI.test(context)) {
    throw new AppError('invalid', 'context_control_character', 'The text of this code holds hidden control characters; it was refused.');
  }
  return { text: s, method, digits: Number(s[2]), challenge, hint, context };
}

// deviceHint: the first 2 characters of base64url(SHA-256(device id)).
export async function deviceHint(deviceId) {
  return b64url(await crypto.subtle.digest('SHA-256', enc.encode(deviceId))).slice(0, 2);
}

// offlineOTP is qrauth.OfflineOTP with the method key as a WebCrypto HMAC
// key: HOTP's dynamic truncation of HMAC-SHA256(key, label || data).
export async function offlineOTP(hmacKey, text, digits) {
  const msg = enc.encode('qrauth-v1 offline-otp\n' + text);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', hmacKey, msg));
  const o = mac[31] & 0x0f;
  const bin = ((mac[o] & 0x7f) * 0x1000000) + (mac[o + 1] << 16) + (mac[o + 2] << 8) + mac[o + 3];
  return String(bin % 10 ** digits).padStart(digits, '0');
}

function hmacKey(raw) {
  return crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

export function checkPIN(pin) {
  if (!/^[0-9]{4,12}$/.test(pin)) throw new AppError('invalid', 'invalid_pin', 'The PIN must be 4 to 12 digits.');
}

function pinKey(pin, salt, p) {
  return argon2id(enc.encode(pin), salt, { time: p.time, memKiB: p.memory_kib, tagLen: 32 });
}

function xor(a, b) {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

// --- activation (docs/offline.md §2, §8) ---------------------------------

// activate turns a method on at the server and returns the key record to
// keep in dev.offline[method]. For OFFLINE_PIN the key is wrapped under the
// PIN before it is kept; the PIN is never sent.
export async function activate(dev, method, pin) {
  if (method === OFFLINE_PIN) checkPIN(pin);
  const act = await signedCall(dev, 'POST', METHODS_PATH + '/' + method);
  let key;
  try {
    key = b64urlDecode(act.key);
  } catch (_) {
    key = null;
  }
  if (!key || key.length !== 32 || act.method !== method || act.device_id !== dev.deviceId || canonicalOrigin(act.origin) !== canonicalOrigin(dev.origin)) {
    throw new AppError('internal', 'bad_response', 'The server sent an activation this app cannot use.');
  }
  const rec = { method, keyId: act.key_id, activatedAt: act.activated_at, hint: await deviceHint(dev.deviceId) };
  if (method === OFFLINE_DEVICE) {
    rec.key = await hmacKey(key);
  } else {
    const salt = crypto.getRandomValues(new Uint8Array(16));
    rec.wrapped = xor(key, pinKey(pin, salt, PIN_PARAMS));
    rec.salt = salt;
    rec.params = { ...PIN_PARAMS };
  }
  key.fill(0);
  return rec;
}

export async function deactivate(dev, method) {
  await signedCall(dev, 'DELETE', METHODS_PATH + '/' + method);
}

// serverMethods lists this device's methods as the server knows them.
export async function serverMethods(dev) {
  const d = await signedCall(dev, 'GET', METHODS_PATH);
  return Array.isArray(d.methods) ? d.methods : [];
}

// --- answering a challenge (no network) ----------------------------------

// startOffline decodes a scanned text and finds the key it is for.
export async function startOffline(dev, text) {
  const vd = decodeVerificationData(text);
  const rec = dev.offline && dev.offline[vd.method];
  if (!rec || rec.hint !== vd.hint) {
    throw new AppError('not_found', 'no_offline_key', vd.method === OFFLINE_PIN
      ? 'This code is for another phone, or for codes with a PIN, which are not turned on in this app. Turn them on while online, or check that the page asked for this phone.'
      : 'This code is for another phone, or for codes without a PIN, which are not turned on in this app. Turn them on while online, or check that the page asked for this phone.');
  }
  return { ...vd, needsPIN: vd.method === OFFLINE_PIN, rec };
}

// offlineCode derives the code; a wrong PIN gives a wrong code, on purpose.
export async function offlineCode(ch, pin) {
  if (ch.method === OFFLINE_DEVICE) return offlineOTP(ch.rec.key, ch.text, ch.digits);
  checkPIN(pin);
  const raw = xor(ch.rec.wrapped, pinKey(pin, ch.rec.salt, ch.rec.params));
  try {
    return await offlineOTP(await hmacKey(raw), ch.text, ch.digits);
  } finally {
    raw.fill(0);
  }
}

// --- online transaction approval (docs/offline.md §9) --------------------

// parseTransactionURL returns the token of ORIGIN/t/TOKEN for our origin.
export function parseTransactionURL(origin, text) {
  return parseCodeURL(origin, text, TX_PATH, /^[A-Za-z0-9_-]{22,64}$/,
    new AppError('invalid', 'not_a_transaction_code', 'This QR code is not a qrauth transaction code.'));
}

export function isTransactionURL(text) {
  try {
    return new URL(String(text).trim()).pathname.startsWith(TX_PATH);
  } catch (_) {
    return false;
  }
}

// fetchTransaction gets the transaction and checks that its text is the
// one whose hash the phone will sign.
export async function fetchTransaction(dev, text) {
  const tok = parseTransactionURL(dev.origin, text);
  const info = await signedCall(dev, 'GET', APPROVALS_PATH + '/' + tok);
  const sum = hex(await crypto.subtle.digest('SHA-256', enc.encode(info.text || '')));
  if (canonicalOrigin(info.origin) !== canonicalOrigin(dev.origin) || typeof info.text !== 'string' || info.text === '' ||
      info.text_sha256 !== sum || typeof info.id !== 'string' || !info.id || /[\r\n\0]/.test(info.id) ||
      CONTROL.test(info.text) || BIDI.test(info.text)) {
    throw new AppError('internal', 'bad_response', 'The server sent a transaction this app cannot show.');
  }
  return { info, token: tok };
}

// transactionBytes is TransactionDecision.SignedBytes.
export function transactionBytes({ origin, id, textSha256, device, decision }) {
  return signedLines('qrauth-v1 transaction', [
    ['origin', origin], ['transaction', id], ['text-sha256', textSha256], ['device', device], ['decision', decision],
  ]);
}

export async function decideTransaction(dev, tx, decision) {
  const bytes = transactionBytes({ origin: dev.origin, id: tx.info.id, textSha256: tx.info.text_sha256, device: dev.deviceId, decision });
  const signature = b64url(await sign(dev.privateKey, bytes));
  const out = await signedCall(dev, 'POST', APPROVALS_PATH + '/' + tx.token, { decision, signature });
  return out.status;
}
