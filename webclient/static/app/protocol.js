// The app side of the qrauth wire protocol (docs/protocol.md §3, §7, §9),
// as appclient speaks it: discovery, the QR URL check, the join, the
// challenge check, the signed decision, the profile and the end of a room.

import { AppError, b64url, hex, sign } from './keys.js';

const enc = new TextEncoder();

// Protocol versions this app speaks (discovery's protocol_version).
export const PROTOCOL_VERSIONS = [1, 2];
export const QR_PATH = '/q/';
const MODES = ['login', 'signup', 'link'];

// --- discovery (§3) ------------------------------------------------------

export async function discover() {
  let res;
  try {
    res = await fetch('/.well-known/qrauth', { cache: 'no-store', credentials: 'omit' });
  } catch (_) {
    throw new AppError('unavailable', 'server_unreachable', 'The qrauth server cannot be reached. Check the phone’s connection and try again.');
  }
  if (!res.ok) throw new AppError('invalid', 'not_a_qrauth_server', 'This server does not answer as a qrauth server.');
  const d = await res.json();
  if (!PROTOCOL_VERSIONS.includes(d.protocol_version)) {
    throw new AppError('invalid', 'unsupported_protocol', 'This server speaks a newer qrauth protocol. Reload the app to update it.');
  }
  if (typeof d.origin !== 'string' || typeof d.phone_salt !== 'string' || typeof d.app_socket !== 'string') {
    throw new AppError('invalid', 'bad_discovery', 'The server’s discovery document is malformed.');
  }
  if (location.protocol === 'https:' && !d.app_socket.startsWith('wss:')) {
    throw new AppError('invalid', 'bad_discovery', 'The server offers an unencrypted connection on an https page; refused.');
  }
  return d;
}

// --- the QR URL (§7.2) ---------------------------------------------------

// canonicalOrigin is appclient's: lowercase scheme://host[:port], default
// port dropped; null when not an http(s) origin.
export function canonicalOrigin(s) {
  let u;
  try {
    u = new URL(s);
  } catch (_) {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  return u.origin;
}

// parseCodeURL returns the token of a scanned text that is exactly
// ORIGIN + path + TOKEN for our own origin, with a token that tokenRe
// accepts, and refuses anything else (notOurs) without contacting the
// server (appclient's parseCodeURL).
export function parseCodeURL(origin, text, path, tokenRe, notOurs) {
  const s = String(text).trim();
  let u;
  try {
    u = new URL(s);
  } catch (_) {
    throw notOurs;
  }
  const got = canonicalOrigin(s);
  if (!got) throw notOurs;
  if (got !== canonicalOrigin(origin)) {
    throw new AppError('invalid', 'foreign_origin', `This code belongs to ${got}, not to your server. Never approve a code shown by another site.`);
  }
  // The URL parser would quietly resolve escapes and dot segments; the code
  // must be exactly origin + path + token.
  const rest = s.slice(s.indexOf('/', s.indexOf('//') + 2));
  if (u.username || u.password || u.search || u.hash || s.includes('#') || s.includes('?') || !rest.startsWith(path)) throw notOurs;
  const tok = rest.slice(path.length);
  if (!tokenRe.test(tok)) throw notOurs;
  return tok;
}

// parseQRURL returns the PSK of a scanned text that is exactly
// ORIGIN/q/PSK for our own origin (appclient.ParseQRURL).
export function parseQRURL(origin, text) {
  return parseCodeURL(origin, text, QR_PATH, /^[A-Za-z0-9_-]{16,64}$/,
    new AppError('invalid', 'not_a_qrauth_code', 'This QR code is not a qrauth sign-in code.'));
}

// --- typed codes (§7.9) --------------------------------------------------

export const CODE_PATH = '/api/app/code';
export const USER_CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

// normalizeUserCode is wire.NormalizeUserCode: case, spaces and dashes do
// not matter, O reads as 0 and I, L as 1; the result is 8 characters of the
// alphabet, or null for text that cannot be a code.
export function normalizeUserCode(text) {
  const s = String(text);
  if (s.length > 32) return null;
  let out = '';
  for (let c of s) {
    if (c === ' ' || c === '-' || c === '\t') continue;
    if (c >= 'a' && c <= 'z') c = c.toUpperCase();
    if (c === 'O') c = '0';
    if (c === 'I' || c === 'L') c = '1';
    if (!USER_CODE_ALPHABET.includes(c)) return null;
    out += c;
  }
  return out.length === 8 ? out : null;
}

// exchangeCode trades a typed code for the URL of the QR code it stands
// for; the caller then checks that URL like a scanned one (parseQRURL) and
// joins as after a scan, so the signed join is unchanged.
export async function exchangeCode(text) {
  const code = normalizeUserCode(text);
  if (!code) throw new AppError('invalid', 'invalid_code', reasonText('invalid_code'));
  let res;
  try {
    res = await fetch(CODE_PATH, {
      method: 'POST', cache: 'no-store', credentials: 'omit',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ code }),
    });
  } catch (_) {
    throw new AppError('unavailable', 'server_unreachable', reasonText('server_unreachable'));
  }
  let data = null;
  try {
    data = await res.json();
  } catch (_) {
    data = null;
  }
  if (!res.ok) {
    const reason = (data && data.reason) || 'http_' + res.status;
    throw new AppError((data && data.code) || 'internal', reason, reasonText(reason, data && data.message));
  }
  if (!data || typeof data.url !== 'string') throw new AppError('internal', 'bad_response', reasonText('bad_response'));
  return data.url;
}

// --- the join (§7.2; signed since protocol 2, §9.3) ----------------------

// joinBytes is Join.SignedBytes of protocol 2: the PSK enters only as its
// SHA-256, so the signed bytes never hold a value that lets anyone join.
export async function joinBytes({ origin, psk, device, phone }) {
  const h = hex(await crypto.subtle.digest('SHA-256', enc.encode(psk)));
  return signedLines('qrauth-v2 join', [['origin', origin], ['psk-sha256', h], ['device', device], ['phone', phone]]);
}

// joinFrame builds the join message. It is the one place that knows what a
// join carries for each protocol version: version 1 sends the ids, version 2
// adds the public key and a signature by the device key over joinBytes for
// the app's stored origin. (A version 1 server refuses unknown fields, so
// the signed join is sent only to a server that asks for it.)
export async function joinFrame(dev, disc, psk) {
  const f = { type: 'join', psk, device_id: dev.deviceId, phone_id_hash: dev.phoneIdHash };
  if (disc.protocol_version >= 2) {
    const bytes = await joinBytes({ origin: dev.origin, psk, device: dev.deviceId, phone: dev.phoneIdHash });
    f.signature = b64url(await sign(dev.privateKey, bytes));
    f.public_key = b64url(dev.publicKeyRaw);
  }
  return f;
}

// --- the challenge and the decision (§7.3, §9.1) -------------------------

export function checkChallenge(m, origin) {
  if (canonicalOrigin(m.origin) !== canonicalOrigin(origin)) {
    throw new AppError('invalid', 'foreign_origin', 'The server asks to sign for another site; refused.');
  }
  if (!MODES.includes(m.mode)) throw new AppError('invalid', 'bad_challenge', 'The server’s challenge has an unknown mode.');
  for (const v of [m.origin, m.room, m.nonce]) {
    if (typeof v !== 'string' || v === '' || v.length > 512 || /[\r\n\0]/.test(v)) {
      throw new AppError('invalid', 'bad_challenge', 'The server’s challenge is malformed.');
    }
  }
}

// signedLines is the line format of every signed message (§9): a header
// line, then key=value lines, each ending in one LF.
export function signedLines(header, pairs) {
  let s = header + '\n';
  for (const [k, v] of pairs) {
    if (/[\n\r\0]/.test(v)) throw new AppError('invalid', 'bad_challenge', 'A signed value contains a line break.');
    s += k + '=' + v + '\n';
  }
  return enc.encode(s);
}

// decisionBytes is Decision.SignedBytes (§9.1).
export function decisionBytes({ origin, room, nonce, mode, device, phone, decision }) {
  return signedLines('qrauth-v1 decision', [
    ['origin', origin], ['room', room], ['nonce', nonce], ['mode', mode],
    ['device', device], ['phone', phone], ['decision', decision],
  ]);
}

export async function decisionFrame(dev, ch, decision, extra = {}) {
  checkChallenge(ch, dev.origin);
  const bytes = decisionBytes({
    origin: ch.origin, room: ch.room, nonce: ch.nonce, mode: ch.mode,
    device: dev.deviceId, phone: dev.phoneIdHash, decision,
  });
  const f = { type: 'decision', decision, signature: b64url(await sign(dev.privateKey, bytes)) };
  if (dev.name) f.device_name = dev.name;
  if (ch.mode === 'signup' || ch.mode === 'link') f.public_key = b64url(dev.publicKeyRaw);
  if (extra.profile && ch.mode === 'signup') f.profile = extra.profile;
  return f;
}

// --- the app socket (§7) -------------------------------------------------

// Scan is one app socket serving one room: open, join, challenge, decide.
export class Scan {
  constructor(dev, disc) {
    this.dev = dev;
    this.disc = disc;
    this.queue = [];
    this.waiters = [];
    this.ended = null; // the AppError that ended the socket
    this.challenge = null;
  }

  // open joins the room of psk and resolves with the challenge.
  async open(psk) {
    const ws = new WebSocket(this.disc.app_socket);
    this.ws = ws;
    ws.onmessage = (ev) => {
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch (_) {
        return this.push({ type: 'error', code: 'invalid', reason: 'malformed_message', message: 'The server sent something unreadable.' });
      }
      if (m && typeof m.type === 'string') this.push(m);
    };
    ws.onclose = (ev) => this.closed(ev);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new AppError('unavailable', 'server_unreachable', 'The qrauth server cannot be reached. Check the phone’s connection and try again.'));
    });
    ws.onerror = null;
    ws.send(JSON.stringify(await joinFrame(this.dev, this.disc, psk)));
    const ch = await this.next(['challenge']);
    checkChallenge(ch, this.dev.origin);
    this.challenge = ch;
    return ch;
  }

  // approve sends the signed approval; resolves with done or, in a sign-up
  // without a profile, profile_needed.
  async approve(profile) {
    const f = await decisionFrame(this.dev, this.challenge, 'approve', { profile });
    this.ws.send(JSON.stringify(f));
    return this.next(this.challenge.mode === 'signup' ? ['done', 'profile_needed'] : ['done']);
  }

  async deny() {
    this.ws.send(JSON.stringify(await decisionFrame(this.dev, this.challenge, 'deny')));
    return this.next(['done']);
  }

  async sendProfile(profile) {
    this.ws.send(JSON.stringify({ type: 'profile', name: profile.name || '', email: profile.email || '' }));
    return this.next(['done']);
  }

  // wait resolves with done (after profile_needed, when the browser's form
  // is submitted).
  wait() {
    return this.next(['done']);
  }

  close() {
    if (this.ws && this.ws.readyState <= 1) this.ws.close(1000);
  }

  push(m) {
    this.queue.push(m);
    this.wake();
  }

  closed(ev) {
    if (!this.ended) {
      this.ended = ev.code >= 4000 && ev.code < 5000
        ? new AppError('closed', ev.reason || 'closed_' + ev.code, reasonText(ev.reason, ''))
        : new AppError('unavailable', 'connection_lost', 'The connection to the server was lost. Scan the code again.');
    }
    this.wake();
  }

  wake() {
    const ws = this.waiters;
    this.waiters = [];
    ws.forEach((w) => w());
  }

  // next resolves with the first message of one of the wanted types, and
  // rejects on an error message or the end of the socket. Unknown types are
  // skipped (§2.2).
  async next(want) {
    for (;;) {
      while (this.queue.length) {
        const m = this.queue.shift();
        if (m.type === 'error') {
          this.ended = new AppError(m.code, m.reason, reasonText(m.reason, m.message));
          throw this.ended;
        }
        if (want.includes(m.type)) return m;
      }
      if (this.ended) throw this.ended;
      await new Promise((r) => this.waiters.push(r));
    }
  }
}

// REASONS puts every refusal of docs/protocol.md §12.3 and docs/offline.md
// §10 in plain words for a person holding this phone (a test checks that
// none is missing); for anything else the server's own sentence is shown.
const TRY_AGAIN = 'Scan the code on the other screen again.';
const APP_BUG = 'This app sent something the server could not read. Reload the app and try again.';
const SERVER_BUG = 'The server could not handle this request. Try again in a moment.';
export const REASONS = {
  // The app socket and the join.
  malformed_frame: APP_BUG,
  frame_too_large: APP_BUG,
  unknown_type: APP_BUG,
  binary_frame: APP_BUG,
  invalid_utf8: APP_BUG,
  invalid_psk: 'This is not a valid qrauth code. ' + TRY_AGAIN,
  invalid_device_id: APP_BUG,
  device_id_required: APP_BUG,
  join_not_signed: 'This app is out of date for the server. Reload the app to update it.',
  weak_public_key: 'This phone’s key was refused. Set the app up again.',
  invalid_phone_id_hash: APP_BUG,
  invalid_decision: APP_BUG,
  invalid_signature_encoding: APP_BUG,
  invalid_public_key: 'This phone’s key was refused. Set the app up again.',
  invalid_device_name: 'The name of this phone is too long or has line breaks. Set the app up again with a shorter name.',
  invalid_name: 'The name is too long (at most 100 bytes, one line).',
  invalid_email: 'That does not look like an e-mail address (name@example.com).',
  join_first: APP_BUG,
  not_expected: 'This code was already answered.',
  device_id_mismatch: 'This phone’s key does not match its id. Set the app up again.',
  bad_signature: 'The server did not accept this phone’s signature. Nothing was signed in or approved.',
  psk_unknown: 'This code has expired or was already used. Scan the code that is on the screen now.',
  room_gone: 'The sign-in page closed or its server restarted before you finished. Scan the code that is on the screen now.',
  invalid_code: 'A sign-in code has 8 letters and digits, like 7K3M-QX9D. Check what you typed.',
  code_unknown: 'That code is not right, has changed or was already used. Type the code the computer shows now.',
  too_many_guesses: 'Too many wrong codes were typed on this server just now. Scan the QR code instead, or try again in a minute.',
  phone_mismatch: 'This phone is registered with another phone number. Set the app up again with the number you signed up with.',
  device_not_linked: 'This phone number already has an account, but this phone is not one of its phones. Sign in on a computer with your other phone and link this one from the account page.',
  device_already_registered: 'This phone already belongs to an account, so it cannot be added to another one.',
  phone_taken: 'This phone number belongs to another account.',
  device_exists: 'This phone was registered a moment ago by another request. ' + TRY_AGAIN,
  user_exists: SERVER_BUG,
  session_exists: SERVER_BUG,
  browser_gone: 'The sign-in page was closed on the other screen. Nothing was signed in.',
  room_expired: 'The sign-in took too long and ran out. Get a new code on the other screen and scan it again.',
  too_many_rooms: 'The server is very busy right now. Try again in a minute.',
  shutting_down: 'The server is restarting. Try again in a minute.',
  rate_limited: 'Too many attempts from this network. Wait a minute and try again.',
  bad_origin: 'The request came from another site and was refused.',
  not_websocket: APP_BUG,
  no_bind_cookie: 'The sign-in page on the other screen lost its browser cookie. Reload that page and scan its new code.',
  invalid_mode: APP_BUG,
  // Browser sessions and tickets (met by the pages, shown here if relayed).
  not_signed_in: 'That browser is not signed in any more.',
  session_expired: 'That session or code has run out of time.',
  malformed_body: APP_BUG,
  malformed_ticket: APP_BUG,
  body_too_large: APP_BUG,
  ticket_invalid: 'The sign-in was already used or is unknown. Start again on the other screen.',
  ticket_expired: 'The sign-in took too long on the other screen. Start again there.',
  ticket_wrong_browser: 'The sign-in was finished in another browser than the one that showed the code. Nothing was signed in.',
  session_not_found: 'That browser was already signed out.',
  user_not_found: 'The account was not found.',
  device_not_found: 'That phone is no longer on the account.',
  // Device-signed calls.
  device_signature_required: APP_BUG,
  bad_time: APP_BUG,
  clock_skew: 'This phone’s clock is more than a minute off. Set the phone to set its time automatically, then try again.',
  device_unknown: 'The server does not know this phone: it was removed from the account, or it has never signed in. Scan a code to sign in or link it first.',
  replayed: 'This request was already sent once. Try again.',
  forbidden: 'Your account may not do this.',
  account_disabled: 'Your account is disabled, so it cannot sign in or approve anything. Ask your administrator to enable it again.',
  invalid_reason: APP_BUG,
  own_account: 'You cannot disable or delete the account you are signed in with.',
  invalid_limit: APP_BUG,
  invalid_after: APP_BUG,
  invalid_role: APP_BUG,
  no_such_route: 'The server does not offer this. It may run an older qrauth, or the feature is off.',
  method_not_allowed: APP_BUG,
  unsupported_media_type: APP_BUG,
  bad_request: APP_BUG,
  invalid_argument: SERVER_BUG,
  internal: 'The server failed. Try again in a moment.',
  // Account recovery (docs/recovery.md).
  invalid_recovery_code: 'A recovery code has 16 letters and digits, like 7K3M-QX9D-2HJW-N5TA. Check what you typed.',
  bad_recovery_code: 'That recovery code is not right or was already used. Check it, or try another of your codes.',
  link_code_expired: 'This link code has expired. Ask the helpdesk for a new one.',
  recovery_locked: 'Recovery codes of this account are locked after too many wrong codes. Ask the helpdesk for a link code.',
  too_many_wrong_codes: 'Too many wrong recovery codes were tried from this network. Wait a while, or ask the helpdesk for a link code.',
  recovery_code_exists: 'The server could not make the code. ' + TRY_AGAIN,
  // Offline codes and transactions (docs/offline.md §10).
  api_credential_required: 'This request needs a relying site’s credentials.',
  bad_api_token: 'This request needs a relying site’s credentials.',
  user_required: APP_BUG,
  invalid_user: APP_BUG,
  invalid_method: APP_BUG,
  ambiguous_email: 'Several accounts use this e-mail address.',
  context_too_long: 'The text of this code is too long to be a qrauth offline code.',
  context_not_utf8: 'The text of this code is not readable text.',
  context_control_character: 'The text of this code holds hidden control characters; it was refused.',
  text_empty: 'The request has no text to approve.',
  text_too_long: 'The text to approve is too long.',
  text_not_utf8: 'The text to approve is not readable text.',
  text_control_character: 'The text to approve holds hidden control characters; it was refused.',
  offline_method_not_found: 'These codes are not turned on for this phone at the server. Turn them on again.',
  device_required: 'Several phones of the account can answer; the site must choose one.',
  method_locked: 'These codes are locked after too many wrong numbers. Ask the helpdesk to unlock them; signing in by scanning still works.',
  malformed_otp: 'Type the number exactly as the phone shows it, digits only.',
  wrong_code: 'That number is wrong. Check the PIN and the code, and try again.',
  method_changed: 'These codes were turned off or on again since this code was made. Ask for a new code.',
  offline_session_not_found: 'This code is unknown or belongs to another browser. Ask for a new code.',
  session_succeeded: 'This code was already used.',
  session_cancelled: 'This code was cancelled by the site.',
  session_locked: 'These codes are locked after too many wrong numbers. Ask the helpdesk to unlock them.',
  session_failed: 'This code can no longer be used: the codes were turned off or on again. Ask for a new code.',
  not_locked: 'These codes are not locked.',
  no_offline_method: 'No account with codes without network was found for what was typed.',
  invalid_identifier: 'Type the e-mail address of the account.',
  invalid_choice: APP_BUG,
  invalid_page_link: 'This approval link is not valid or has run out.',
  invalid_wait: APP_BUG,
  approval_not_found: 'This request is unknown or was withdrawn.',
  not_your_transaction: 'This request is for another account or another phone. Do not approve it here.',
  approval_expired: 'This request has run out of time. Ask the site for a new one.',
  approval_approved: 'This request was already approved.',
  approval_denied: 'This request was already declined.',
  approval_cancelled: 'The site withdrew this request.',
  malformed_token: 'This is not a valid transaction code.',
  // This app's own (never on the wire).
  server_unreachable: 'The qrauth server cannot be reached. Check the phone’s connection and try again.',
  connection_lost: 'The connection to the server was lost. Scan the code again.',
  bad_response: 'The server sent an answer this app cannot use.',
  not_offline_code: 'This QR code is not a qrauth offline code.',
  no_offline_key: 'This code is for another phone, or for codes that are not turned on in this app.',
  invalid_pin: 'The PIN must be 4 to 12 digits.',
  not_a_transaction_code: 'This QR code is not a qrauth transaction code.',
};

export function reasonText(reason, fallback) {
  return REASONS[reason] || fallback || 'Something went wrong (' + reason + ').';
}

// --- device-signed HTTP calls (§9.2, §11.3) ------------------------------

// requestBytes is AppRequest.SignedBytes (§9.2).
export function requestBytes({ method, path, time, nonce, device }) {
  return signedLines('qrauth-v1 request', [
    ['method', method], ['path', path], ['time', String(time)], ['nonce', nonce], ['device', device],
  ]);
}

// signedHeaders returns the four X-Qrauth-* headers of a call. time and
// nonce are given by tests (the worked examples); a real call draws 16
// random bytes and reads the clock.
export async function signedHeaders(dev, method, path, time, nonce) {
  if (time === undefined) time = Math.floor(Date.now() / 1000);
  if (nonce === undefined) nonce = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const sig = await sign(dev.privateKey, requestBytes({ method, path, time, nonce, device: dev.deviceId }));
  return {
    'X-Qrauth-Device': dev.deviceId,
    'X-Qrauth-Time': String(time),
    'X-Qrauth-Nonce': nonce,
    'X-Qrauth-Signature': b64url(sig),
  };
}

// signedCall makes a device-signed call to our own origin and returns the
// decoded JSON answer (null for 204). Errors are AppErrors whose message is
// the plain-words sentence for the server's reason.
export async function signedCall(dev, method, path, body) {
  const headers = await signedHeaders(dev, method, path);
  headers.Accept = 'application/json';
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (_) {
    throw new AppError('unavailable', 'server_unreachable', reasonText('server_unreachable'));
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (_) {
    data = null;
  }
  if (!res.ok) {
    const reason = (data && data.reason) || 'http_' + res.status;
    throw new AppError((data && data.code) || 'internal', reason, reasonText(reason, data && data.message));
  }
  if (!data || typeof data !== 'object') throw new AppError('internal', 'bad_response', reasonText('bad_response'));
  return data;
}

export const SESSIONS_PATH = '/api/app/sessions';
export const DEVICES_PATH = '/api/app/devices';

export async function listSessions(dev) {
  const d = await signedCall(dev, 'GET', SESSIONS_PATH);
  return Array.isArray(d.sessions) ? d.sessions : [];
}

// revokeSession ends a browser session; the id is checked so that the
// signed path and the path the server sees are the same (nothing to escape).
export async function revokeSession(dev, id) {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(String(id))) throw new AppError('invalid', 'invalid_session_id', 'That is not a session id.');
  await signedCall(dev, 'DELETE', SESSIONS_PATH + '/' + id);
}

export async function listDevices(dev) {
  const d = await signedCall(dev, 'GET', DEVICES_PATH);
  return Array.isArray(d.devices) ? d.devices : [];
}

// --- account recovery (docs/recovery.md, protocol.md §9.4) ---------------

export const RECOVER_PATH = '/api/app/recover';
export const RECOVER_FRAGMENT = 'recover=';

// normalizeRecoveryCode is recovery.Normalize: like a typed sign-in code,
// but 16 characters; null for text that cannot be a code.
export function normalizeRecoveryCode(text) {
  const s = String(text);
  if (s.length > 64) return null;
  let out = '';
  for (let c of s) {
    if (c === ' ' || c === '-' || c === '\t') continue;
    if (c >= 'a' && c <= 'z') c = c.toUpperCase();
    if (c === 'O') c = '0';
    if (c === 'I' || c === 'L') c = '1';
    if (!USER_CODE_ALPHABET.includes(c)) return null;
    out += c;
  }
  return out.length === 16 ? out : null;
}

// isRecoverURL tells a helpdesk's QR code (ORIGIN/app#recover=CODE).
export function isRecoverURL(text) {
  return /^https?:\/\/[^#]*#recover=/.test(String(text));
}

// parseRecoverURL returns the code of a helpdesk's QR code, which must be
// on our own origin.
export function parseRecoverURL(origin, text) {
  let u;
  try {
    u = new URL(String(text));
  } catch (_) {
    u = null;
  }
  if (!u || canonicalOrigin(u.origin) !== canonicalOrigin(origin) || u.pathname !== '/app' || !u.hash.startsWith('#' + RECOVER_FRAGMENT)) {
    throw new AppError('invalid', 'foreign_origin', 'This QR code is not a recovery code of ' + origin + '.');
  }
  const code = normalizeRecoveryCode(decodeURIComponent(u.hash.slice(1 + RECOVER_FRAGMENT.length)));
  if (!code) throw new AppError('invalid', 'invalid_recovery_code', reasonText('invalid_recovery_code'));
  return code;
}

// recoverBytes is Recover.SignedBytes (§9.4): the code enters only as the
// SHA-256 of its normalized form.
export async function recoverBytes({ origin, code, device, phone, name }) {
  const h = hex(await crypto.subtle.digest('SHA-256', enc.encode(code)));
  return signedLines('qrauth-v1 recover', [['origin', origin], ['code-sha256', h], ['device', device], ['phone', phone], ['name', name]]);
}

// recoverAccount links this (new) phone to the account of a recovery code
// or a helpdesk link code, signing with its own key; every browser of the
// account is signed out. It returns the server's answer.
export async function recoverAccount(dev, text) {
  const code = normalizeRecoveryCode(text);
  if (!code) throw new AppError('invalid', 'invalid_recovery_code', reasonText('invalid_recovery_code'));
  const name = (dev.name || '').trim() || 'Phone';
  const bytes = await recoverBytes({ origin: dev.origin, code, device: dev.deviceId, phone: dev.phoneIdHash, name });
  const body = {
    code, device_id: dev.deviceId, public_key: b64url(dev.publicKeyRaw), phone_id_hash: dev.phoneIdHash,
    device_name: name, signature: b64url(await sign(dev.privateKey, bytes)),
  };
  let res;
  try {
    res = await fetch(RECOVER_PATH, {
      method: 'POST', cache: 'no-store', credentials: 'omit',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (_) {
    throw new AppError('unavailable', 'server_unreachable', reasonText('server_unreachable'));
  }
  let data = null;
  try {
    data = await res.json();
  } catch (_) {
    data = null;
  }
  if (!res.ok) {
    const reason = (data && data.reason) || 'http_' + res.status;
    throw new AppError((data && data.code) || 'internal', reason, reasonText(reason, data && data.message));
  }
  if (!data || typeof data.user_id !== 'string') throw new AppError('internal', 'bad_response', reasonText('bad_response'));
  return data;
}

