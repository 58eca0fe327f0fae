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

// parseQRURL returns the PSK of a scanned text that is exactly
// ORIGIN/q/PSK for our own origin, and refuses anything else without
// contacting the server (appclient.ParseQRURL).
export function parseQRURL(origin, text) {
  const notOurs = new AppError('invalid', 'not_a_qrauth_code', 'This QR code is not a qrauth sign-in code.');
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
  // must be exactly origin + /q/ + PSK.
  const rest = s.slice(s.indexOf('/', s.indexOf('//') + 2));
  if (u.username || u.password || u.search || u.hash || s.includes('#') || s.includes('?') || !rest.startsWith(QR_PATH)) throw notOurs;
  const psk = rest.slice(QR_PATH.length);
  if (!/^[A-Za-z0-9_-]{16,64}$/.test(psk)) throw notOurs;
  return psk;
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

// reasonText puts the refusals of docs/protocol.md §12.3 that a phone meets
// in plain words for this app; for anything else the server's own sentence.
const REASONS = {
  psk_unknown: 'This code has expired or was already used. Scan the code that is on the screen now.',
  device_not_linked: 'This phone number already has an account, but this phone is not one of its phones. Sign in on a computer with your other phone and link this one from the account page.',
  phone_mismatch: 'This phone is registered with another phone number. Set the app up again with the number you signed up with.',
  device_already_registered: 'This phone already belongs to an account, so it cannot be added to another one.',
  phone_taken: 'This phone number belongs to another account.',
  browser_gone: 'The sign-in page was closed on the other screen. Nothing was signed in.',
  room_expired: 'The sign-in took too long and ran out. Get a new code on the other screen and scan it again.',
  bad_signature: 'The server did not accept this phone’s signature. Nothing was signed in.',
  rate_limited: 'Too many attempts from this network. Wait a minute and try again.',
  not_expected: 'This code was already answered.',
  join_not_signed: 'This app is out of date for the server. Reload the app to update it.',
  weak_public_key: 'This phone’s key was refused. Set the app up again.',
  internal: 'The server failed. Try again in a moment.',
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
