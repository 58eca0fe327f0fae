// The phone web app: set-up, scanning, approval. One screen at a time;
// body[data-screen] names it (tests wait on it).

import { AppError, loadDevice, saveDevice, newDeviceKey, normalizePhone, phoneIdHash, persistStorage } from './keys.js';
import {
  discover, parseQRURL, canonicalOrigin, Scan, reasonText, listSessions, revokeSession, listDevices, exchangeCode,
  isRecoverURL, parseRecoverURL, recoverAccount,
} from './protocol.js';
import {
  OFFLINE_DEVICE, OFFLINE_PIN, isOfflineCode, decodeVerificationData, isTransactionURL, parseTransactionURL,
  activate, deactivate, serverMethods, startOffline, offlineCode, fetchTransaction, decideTransaction, checkPIN,
} from './offline.js';
import { COUNTRIES, toE164, guessCountry } from './countries.js';
import { Scanner } from './scanner.js';

const byId = (id) => document.getElementById(id);

const state = {
  dev: null,
  pendingURL: null, // a code opened as /q/PSK before the phone was set up
  pendingRecover: null, // a helpdesk's link code opened as /app#recover=CODE
  scan: null,
  scanner: null,
  offline: null, // the offline challenge on screen
  tx: null, // the transaction on screen
};

function show(name) {
  for (const s of document.querySelectorAll('.screen')) s.hidden = s.id !== 'screen-' + name;
  document.body.dataset.screen = name;
  const h = byId('screen-' + name).querySelector('h1');
  if (h && !h.classList.contains('visually-hidden')) {
    h.tabIndex = -1;
    h.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

function setText(id, text) {
  byId(id).textContent = text;
}

function showError(id, msg) {
  const el = byId(id);
  el.textContent = msg;
  el.hidden = !msg;
}

// --- start ---------------------------------------------------------------

async function start() {
  if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
    setText('insecure-origin', location.origin);
    show('insecure');
    return;
  }
  if ('serviceWorker' in navigator) {
    // The shell works without it; a failed registration only costs the
    // offline start.
    navigator.serviceWorker.register('/app/sw.js', { scope: '/app' }).catch(() => {});
  }
  const r = /^#recover=(.+)$/.exec(location.hash);
  if (r) {
    try {
      state.pendingRecover = decodeURIComponent(r[1]);
    } catch (_) {
      state.pendingRecover = null;
    }
    // Single use, and a secret: keep it out of the history.
    history.replaceState(null, '', location.pathname);
  }
  const m = /^#open=(.+)$/.exec(location.hash);
  if (m) {
    try {
      state.pendingURL = decodeURIComponent(m[1]);
    } catch (_) {
      state.pendingURL = null;
    }
    // The code is single use: keep it out of the history.
    history.replaceState(null, '', location.pathname);
  }
  fillCountries();
  wire();
  try {
    state.dev = await loadDevice();
  } catch (_) {
    state.dev = null;
  }
  if (!state.dev) {
    byId('setup-pending').hidden = !state.pendingURL;
    show('setup');
    return;
  }
  if (state.pendingURL) {
    const url = state.pendingURL;
    state.pendingURL = null;
    await answer(url);
    return;
  }
  if (takePendingRecover()) return;
  showHome();
}

function fillCountries() {
  const sel = byId('setup-country');
  const guess = guessCountry();
  for (const [code, name, cc] of COUNTRIES) {
    const o = document.createElement('option');
    o.value = code;
    o.textContent = `${name} (+${cc})`;
    if (code === guess) o.selected = true;
    sel.appendChild(o);
  }
  updatePrefix();
}

function updatePrefix() {
  const c = COUNTRIES.find((x) => x[0] === byId('setup-country').value);
  setText('setup-prefix', c ? '+' + c[2] : '');
}

function wire() {
  byId('setup-country').addEventListener('change', updatePrefix);
  byId('setup-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setUp();
  });
  byId('scan-start').addEventListener('click', scanWithCamera);
  byId('scan-cancel').addEventListener('click', () => {
    stopCamera();
    showHome();
  });
  byId('scan-torch').addEventListener('click', async () => {
    const on = await state.scanner.toggleTorch();
    byId('scan-torch').setAttribute('aria-pressed', String(on));
  });
  byId('scan-type').addEventListener('click', typeCode);
  byId('home-type').addEventListener('click', typeCode);
  byId('typecode-cancel').addEventListener('click', showHome);
  byId('typecode-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitCode();
  });
  byId('approve-yes').addEventListener('click', approve);
  byId('approve-no').addEventListener('click', decline);
  byId('result-again').addEventListener('click', scanWithCamera);
  byId('result-home').addEventListener('click', showHome);
  byId('home-account').addEventListener('click', showAccount);
  byId('account-back').addEventListener('click', showHome);
  byId('home-offline').addEventListener('click', showOffline);
  byId('offline-back').addEventListener('click', showHome);
  byId('offline-device-toggle').addEventListener('click', toggleDeviceCodes);
  byId('offline-pin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    turnOnPIN();
  });
  byId('offline-pin-off').addEventListener('click', () => turnOff(OFFLINE_PIN));
  byId('code-pin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    showCodeWithPIN();
  });
  byId('code-done').addEventListener('click', showHome);
  byId('tx-yes').addEventListener('click', () => decideTx('approve'));
  byId('tx-no').addEventListener('click', () => decideTx('deny'));
  byId('home-recover').addEventListener('click', () => showRecover(''));
  byId('recover-cancel').addEventListener('click', showHome);
  byId('recover-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitRecover();
  });
}

// --- set-up --------------------------------------------------------------

async function setUp() {
  showError('setup-error', '');
  const btn = byId('setup-submit');
  let e164;
  try {
    e164 = normalizePhone(toE164(byId('setup-country').value, byId('setup-phone').value));
  } catch (e) {
    byId('setup-phone').setAttribute('aria-invalid', 'true');
    showError('setup-error', e.message);
    return;
  }
  byId('setup-phone').removeAttribute('aria-invalid');
  btn.disabled = true;
  try {
    const disc = await discover();
    if (canonicalOrigin(disc.origin) !== location.origin) {
      throw new AppError('invalid', 'origin_changed', `This server calls itself ${disc.origin}, but the app was opened at ${location.origin}. Open the app at ${disc.origin}.`);
    }
    const key = await newDeviceKey();
    const name = byId('setup-name').value.trim();
    const dev = {
      version: 1,
      origin: disc.origin,
      phone: e164,
      phoneIdHash: await phoneIdHash(disc.phone_salt, e164),
      name,
      privateKey: key.privateKey,
      publicKey: key.publicKey,
      publicKeyRaw: key.publicKeyRaw,
      deviceId: key.deviceId,
      created: new Date().toISOString(),
    };
    await saveDevice(dev);
    // Asked right after the person's tap, when browsers are most willing:
    // without it the browser may evict the key under storage pressure.
    dev.persisted = await persistStorage();
    await saveDevice(dev);
    state.dev = dev;
  } catch (e) {
    showError('setup-error', e.message);
    btn.disabled = false;
    return;
  }
  btn.disabled = false;
  if (state.pendingURL) {
    const url = state.pendingURL;
    state.pendingURL = null;
    await answer(url);
    return;
  }
  if (takePendingRecover()) return;
  showHome();
}

function showHome() {
  const d = state.dev;
  if (!d) {
    show('setup');
    return;
  }
  setText('home-phone', d.phone);
  setText('home-device', (d.name || 'This phone') + ' · ' + d.deviceId);
  setText('home-storage', d.persisted
    ? 'Kept: the browser will not clear it on its own.'
    : 'Not guaranteed: the browser may clear it when space runs low. Install the app (Add to Home Screen) to keep it.');
  show('home');
}

// --- the account: signed-in browsers and phones ------------------------

function when(iso) {
  const t = iso ? new Date(iso) : null;
  return t && !isNaN(t) && t.getFullYear() > 1 ? t.toLocaleString() : 'unknown';
}

function item(title, lines, action) {
  const li = document.createElement('li');
  li.className = 'item';
  const body = document.createElement('div');
  body.className = 'item-body';
  const h = document.createElement('p');
  h.className = 'item-title';
  h.textContent = title;
  body.appendChild(h);
  for (const l of lines) {
    const p = document.createElement('p');
    p.className = 'item-line';
    p.textContent = l;
    body.appendChild(p);
  }
  li.appendChild(body);
  if (action) li.appendChild(action);
  return li;
}

function emptyItem(text) {
  const li = document.createElement('li');
  li.className = 'item item-empty';
  li.textContent = text;
  return li;
}

// showAccount lists the account's browsers and phones with device-signed
// calls (the same as qrauth-app sessions); every browser has "Sign out".
async function showAccount() {
  show('account');
  const main = byId('screen-account');
  main.dataset.state = 'loading';
  setText('account-status', 'Loading…');
  await refreshAccount();
}

async function refreshAccount() {
  const main = byId('screen-account');
  const sl = byId('account-sessions');
  const dl = byId('account-devices');
  let sessions;
  let devices;
  try {
    [sessions, devices] = await Promise.all([listSessions(state.dev), listDevices(state.dev)]);
  } catch (e) {
    main.dataset.state = 'error';
    setText('account-status', e.message);
    return;
  }
  sl.replaceChildren();
  for (const s of sessions) {
    const what = [s.browser, s.os].filter(Boolean).join(' on ') || 'A browser';
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'btn btn-decline btn-small';
    btn.textContent = 'Sign out';
    btn.dataset.session = s.id;
    btn.setAttribute('aria-label', 'Sign out ' + what + (s.ip ? ' at ' + s.ip : ''));
    btn.addEventListener('click', () => signOut(s, what, btn));
    sl.appendChild(item(what, [(s.ip ? s.ip + ' · ' : '') + 'signed in ' + when(s.created_at), 'last seen ' + when(s.last_seen_at)], btn));
  }
  if (!sessions.length) sl.appendChild(emptyItem('No browser is signed in.'));
  dl.replaceChildren();
  for (const d of devices) {
    const me = d.id === state.dev.deviceId;
    dl.appendChild(item((d.name || 'A phone') + (me ? ' (this phone)' : ''), ['added ' + when(d.created_at), 'last used ' + when(d.last_seen_at)]));
  }
  main.dataset.state = 'ready';
  if (byId('account-status').textContent === 'Loading…') setText('account-status', '');
}

async function signOut(s, what, btn) {
  btn.disabled = true;
  try {
    await revokeSession(state.dev, s.id);
  } catch (e) {
    btn.disabled = false;
    setText('account-status', e.message);
    return;
  }
  setText('account-status', what + ' is signed out.');
  await refreshAccount();
}

// --- codes without network --------------------------------------------

// painted lets the status line show before a long computation (Argon2id
// takes about a second on a phone) blocks the page.
function painted() {
  return new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
}

function offlineKeys() {
  return state.dev.offline || {};
}

function renderOffline(server) {
  const keys = offlineKeys();
  const info = (m) => (server || []).find((x) => x.method === m);
  const line = (m) => {
    if (!keys[m]) return 'Off';
    const i = info(m);
    if (server && !i) return 'Turned off at the server: turn it on again.';
    if (i && i.locked) return 'Locked after wrong numbers: ask the helpdesk to unlock it.';
    return 'On since ' + new Date(keys[m].activatedAt).toLocaleDateString();
  };
  setText('offline-device-state', line(OFFLINE_DEVICE));
  setText('offline-pin-state', line(OFFLINE_PIN));
  const dt = byId('offline-device-toggle');
  dt.textContent = keys[OFFLINE_DEVICE] ? 'Turn off' : 'Turn on';
  dt.className = 'btn btn-small ' + (keys[OFFLINE_DEVICE] ? 'btn-secondary' : 'btn-primary');
  byId('offline-pin-form').hidden = !!keys[OFFLINE_PIN];
  byId('offline-pin-off').hidden = !keys[OFFLINE_PIN];
  byId('screen-offline').dataset.device = keys[OFFLINE_DEVICE] ? 'on' : 'off';
  byId('screen-offline').dataset.pin = keys[OFFLINE_PIN] ? 'on' : 'off';
}

async function showOffline() {
  setText('offline-status', '');
  renderOffline(null);
  show('offline');
  // The server's view (locked, turned off elsewhere) when online; without
  // network the phone's own keys are all there is, and all that is needed.
  try {
    renderOffline(await serverMethods(state.dev));
  } catch (_) {
    /* offline or not set up: the local state stands */
  }
}

async function saveOffline(method, rec) {
  const keys = { ...offlineKeys() };
  if (rec) keys[method] = rec;
  else delete keys[method];
  state.dev.offline = keys;
  await saveDevice(state.dev);
}

async function toggleDeviceCodes() {
  if (offlineKeys()[OFFLINE_DEVICE]) return turnOff(OFFLINE_DEVICE);
  const btn = byId('offline-device-toggle');
  btn.disabled = true;
  setText('offline-status', 'Turning on…');
  try {
    await saveOffline(OFFLINE_DEVICE, await activate(state.dev, OFFLINE_DEVICE));
    setText('offline-status', 'Codes without a PIN are on.');
  } catch (e) {
    setText('offline-status', e.message);
  }
  btn.disabled = false;
  renderOffline(null);
}

async function turnOnPIN() {
  const pin = byId('offline-pin').value;
  const btn = byId('offline-pin-on');
  try {
    checkPIN(pin);
    if (pin !== byId('offline-pin2').value) throw new Error('The two PINs differ. Type the same PIN twice.');
  } catch (e) {
    setText('offline-status', e.message);
    return;
  }
  btn.disabled = true;
  setText('offline-status', 'Turning on… (this takes a moment)');
  await painted();
  try {
    await saveOffline(OFFLINE_PIN, await activate(state.dev, OFFLINE_PIN, pin));
    byId('offline-pin').value = '';
    byId('offline-pin2').value = '';
    setText('offline-status', 'Codes with a PIN are on.');
  } catch (e) {
    setText('offline-status', e.message);
  }
  btn.disabled = false;
  renderOffline(null);
}

async function turnOff(method) {
  setText('offline-status', 'Turning off…');
  try {
    await deactivate(state.dev, method);
  } catch (e) {
    // Already off at the server: drop the key here too.
    if (e.reason !== 'offline_method_not_found') {
      setText('offline-status', e.message);
      return;
    }
  }
  await saveOffline(method, null);
  setText('offline-status', method === OFFLINE_PIN ? 'Codes with a PIN are off.' : 'Codes without a PIN are off.');
  renderOffline(null);
}

// answerOffline shows the request of a scanned offline code and its number:
// no network is used from here on.
async function answerOffline(text) {
  let ch;
  try {
    ch = await startOffline(state.dev, text);
  } catch (e) {
    return result('error', 'No number for this code', e.message);
  }
  state.offline = ch;
  const screen = byId('screen-code');
  setText('code-context', ch.context || '(no text)');
  setText('code-server', 'For ' + state.dev.origin);
  byId('code-result').hidden = true;
  byId('code-pin').value = '';
  showError('code-error', '');
  byId('code-pin-form').hidden = !ch.needsPIN;
  screen.dataset.state = ch.needsPIN ? 'pin' : 'working';
  show('code');
  if (!ch.needsPIN) await showCode(await offlineCode(ch));
}

async function showCodeWithPIN() {
  const pin = byId('code-pin').value;
  try {
    checkPIN(pin);
  } catch (e) {
    showError('code-error', e.message);
    return;
  }
  showError('code-error', '');
  byId('code-show').disabled = true;
  await painted();
  try {
    await showCode(await offlineCode(state.offline, pin));
  } finally {
    byId('code-show').disabled = false;
  }
}

async function showCode(code) {
  // Grouped for reading aloud and typing; the page takes the digits only.
  setText('code-value', code.length > 5 ? code.slice(0, Math.ceil(code.length / 2)) + ' ' + code.slice(Math.ceil(code.length / 2)) : code);
  byId('code-value').dataset.code = code;
  byId('code-pin-form').hidden = true;
  byId('code-result').hidden = false;
  byId('screen-code').dataset.state = 'shown';
}

// --- transactions ------------------------------------------------------

async function answerTransaction(text) {
  show('loading');
  let tx;
  try {
    tx = await fetchTransaction(state.dev, text);
  } catch (e) {
    return result('error', 'This request cannot be shown', e.message);
  }
  state.tx = tx;
  setText('tx-site', 'Asked by ' + tx.info.origin);
  setText('tx-text', tx.info.text);
  byId('tx-yes').disabled = false;
  byId('tx-no').disabled = false;
  show('tx');
}

async function decideTx(decision) {
  byId('tx-yes').disabled = true;
  byId('tx-no').disabled = true;
  try {
    await decideTransaction(state.dev, state.tx, decision);
  } catch (e) {
    return result('error', 'Not recorded', e.message);
  }
  if (decision === 'approve') result('ok', 'Approved', 'Your approval was signed by this phone and recorded.');
  else result('denied', 'Declined', 'Nothing was approved.');
}

// classify checks a scanned text and names its kind; it throws an
// AppError with a plain-words message for anything that is not ours.
function classify(text) {
  if (isOfflineCode(text)) {
    decodeVerificationData(text);
    return 'offline';
  }
  if (isRecoverURL(text)) {
    parseRecoverURL(state.dev.origin, text);
    return 'recover';
  }
  if (isTransactionURL(text)) {
    parseTransactionURL(state.dev.origin, text);
    return 'tx';
  }
  parseQRURL(state.dev.origin, text);
  return 'login';
}

// --- scanning ------------------------------------------------------------

async function scanWithCamera() {
  show('scan');
  const status = byId('scan-status');
  status.textContent = 'Point the camera at the QR code on the other screen.';
  const scanner = new Scanner(byId('scan-video'));
  state.scanner = scanner;
  try {
    await scanner.start();
  } catch (e) {
    // Cancelled, or "Type a code" tapped, while the camera was starting.
    if (state.scanner !== scanner) return;
    stopCamera();
    return result('error', 'No camera', e.message);
  }
  if (state.scanner !== scanner) {
    scanner.stop();
    return;
  }
  byId('scan-torch').hidden = !scanner.torchAvailable();
  let text;
  try {
    text = await scanner.next((t) => {
      try {
        classify(t);
        return true;
      } catch (e) {
        // Keep the camera running: the person may be pointing at another
        // code on the same screen.
        status.textContent = e.message;
        return false;
      }
    });
  } catch (e) {
    if (e.message === 'stopped' || state.scanner !== scanner) return;
    stopCamera();
    return result('error', 'Scanning failed', e.message);
  }
  if (state.scanner !== scanner) return;
  stopCamera();
  await answer(text);
}

// --- typing the code instead (protocol.md §7.9) --------------------------

function typeCode() {
  stopCamera();
  byId('typecode-input').value = '';
  showError('typecode-error', '');
  show('typecode');
  byId('typecode-input').focus();
}

// submitCode exchanges the typed code for the QR code's URL and goes on
// exactly as after a scan. A refusal keeps the form, so a typo costs one
// more try and not a trip back through the menus.
async function submitCode() {
  const submit = byId('typecode-submit');
  submit.disabled = true;
  showError('typecode-error', '');
  let url;
  try {
    url = await exchangeCode(byId('typecode-input').value);
    parseQRURL(state.dev.origin, url);
  } catch (e) {
    showError('typecode-error', e.message);
    byId('typecode-input').focus();
    return;
  } finally {
    submit.disabled = false;
  }
  await answer(url);
}

// --- account recovery (docs/recovery.md) --------------------------------

// takePendingRecover shows the recovery screen for a link code the app was
// opened with (#recover=CODE), once the phone is set up. The person still
// presses "Recover": opening a link must not sign anybody out by itself.
function takePendingRecover() {
  if (!state.pendingRecover) return false;
  const code = state.pendingRecover;
  state.pendingRecover = null;
  showRecover(code);
  return true;
}

function showRecover(code) {
  stopCamera();
  byId('recover-input').value = code || '';
  byId('recover-input').removeAttribute('aria-invalid');
  showError('recover-error', '');
  show('recover');
  byId('recover-input').focus();
}

// submitRecover links this phone with the code. A refusal keeps the form:
// a typo costs one more try.
async function submitRecover() {
  const submit = byId('recover-submit');
  submit.disabled = true;
  showError('recover-error', '');
  let r;
  try {
    r = await recoverAccount(state.dev, byId('recover-input').value);
  } catch (e) {
    byId('recover-input').setAttribute('aria-invalid', 'true');
    showError('recover-error', e.message);
    byId('recover-input').focus();
    return;
  } finally {
    submit.disabled = false;
  }
  const who = r.account && r.account.name ? r.account.name + '’s' : 'your';
  const sessions = r.sessions_ended === 1 ? 'The 1 browser that was signed in was signed out.'
    : 'Browsers signed in to the account were signed out (' + r.sessions_ended + ').';
  const left = r.kind === 'recovery_code' ? ' ' + r.remaining + ' recovery codes are left; make a new set on the account page when few are.' : '';
  result('ok', 'Phone linked', 'This phone now belongs to ' + who + ' account. ' + sessions +
    ' Sign in by scanning a code, then remove the lost phone on the account page.' + left);
}

function stopCamera() {
  if (state.scanner) state.scanner.stop();
  state.scanner = null;
}

// answer joins the room of a scanned or opened code and shows the
// approval screen.
async function answer(text) {
  let psk;
  try {
    const kind = classify(text);
    if (kind === 'offline') return answerOffline(text);
    if (kind === 'tx') return answerTransaction(text);
    if (kind === 'recover') return showRecover(parseRecoverURL(state.dev.origin, text));
    psk = parseQRURL(state.dev.origin, text);
  } catch (e) {
    return result('error', 'Not a code for this server', e.message);
  }
  show('loading');
  let disc;
  try {
    disc = await discover();
    if (canonicalOrigin(disc.origin) !== canonicalOrigin(state.dev.origin)) {
      throw new AppError('invalid', 'origin_changed', 'This server now calls itself ' + disc.origin + '. Set the app up again if that is right.');
    }
  } catch (e) {
    return result('error', 'Cannot reach the server', e.message);
  }
  const scan = new Scan(state.dev, disc);
  state.scan = scan;
  let ch;
  try {
    ch = await scan.open(psk);
  } catch (e) {
    scan.close();
    return result('error', 'This code cannot be used', e.message);
  }
  showChallenge(ch);
}

function showChallenge(ch) {
  const ctx = ch.context || {};
  const prox = ch.proximity || {};
  const accountName = ch.account && ch.account.name;
  if (ch.mode === 'signup') {
    setText('approve-title', 'Create an account?');
    setText('approve-account', `A new account for ${state.dev.phone}, signed in on this browser:`);
    setText('approve-yes', 'Create and sign in');
  } else if (ch.mode === 'link') {
    setText('approve-title', 'Add this phone?');
    setText('approve-account', `Add this phone to the account${accountName ? ' of ' + accountName : ''}, asked by this browser:`);
    setText('approve-yes', 'Add phone');
  } else {
    setText('approve-title', 'Sign in?');
    setText('approve-account', `Sign in${accountName ? ' as ' + accountName : ''} on this browser:`);
    setText('approve-yes', 'Approve');
  }
  // The relying site (an OpenID Connect client) as the server registered
  // it: shown as text, like the login page shows it; absent for a sign-in
  // to the server itself.
  const site = ch.site && typeof ch.site.name === 'string' ? ch.site.name : '';
  setText('approve-site', site ? `Sign in to ${site}` : '');
  byId('approve-site').hidden = !site;
  setText('ctx-browser', [ctx.browser, ctx.os].filter(Boolean).join(' on ') || 'Unknown');
  setText('ctx-place', ctx.place || 'Unknown');
  setText('ctx-ip', ctx.ip || 'Unknown');
  setText('ctx-site', ctx.origin || ch.origin);
  const t = ctx.time ? new Date(ctx.time) : null;
  setText('ctx-time', t && !isNaN(t) ? t.toLocaleString() : 'Unknown');
  const warn = byId('approve-warning');
  warn.textContent = prox.warning || '';
  warn.hidden = !prox.warning;
  let seen = '';
  if (prox.same_network) seen = 'The browser is on the same network as this phone. ';
  if (ch.mode === 'login' && ch.known_address === true) seen += 'This account has signed in from this address before.';
  if (ch.mode === 'login' && ch.known_address === false) seen += 'This account has never signed in from this address.';
  setText('approve-seen', seen.trim());
  byId('approve-profile').hidden = ch.mode !== 'signup';
  showError('profile-error', '');
  byId('approve-yes').disabled = false;
  byId('approve-no').disabled = false;
  show('approve');
}

function readProfile() {
  const name = byId('profile-name').value.trim();
  const email = byId('profile-email').value.trim();
  if (name.includes('\n') || new TextEncoder().encode(name).length > 100) throw new Error('The name is too long (at most 100 bytes, one line).');
  if (email && !/^[^\s@<>()",;]+@[^\s@<>()",;]+$/.test(email)) throw new Error('That does not look like an e-mail address (name@example.com).');
  if (!name && !email) return null;
  return { name, email };
}

async function approve() {
  const scan = state.scan;
  let profile = null;
  if (scan.challenge.mode === 'signup') {
    try {
      profile = readProfile();
    } catch (e) {
      showError('profile-error', e.message);
      return;
    }
  }
  byId('approve-yes').disabled = true;
  byId('approve-no').disabled = true;
  try {
    let m = await scan.approve(profile);
    if (m.type === 'profile_needed') {
      show('wait');
      m = await scan.wait();
    }
    finished(m);
  } catch (e) {
    result('error', 'Not signed in', e.message);
  } finally {
    scan.close();
  }
}

async function decline() {
  const scan = state.scan;
  byId('approve-yes').disabled = true;
  byId('approve-no').disabled = true;
  try {
    finished(await scan.deny());
  } catch (e) {
    result('error', 'Something went wrong', e.message);
  } finally {
    scan.close();
  }
}

function finished(m) {
  switch (m.result) {
    case 'signed_in':
      return result('ok', 'Signed in', 'The browser is signed in now.');
    case 'signed_up':
      return result('ok', 'Account created', 'Your account is ready and the browser is signed in. This phone signs you in from now on.');
    case 'linked':
      return result('ok', 'Phone added', 'This phone can now sign in to the account.');
    case 'denied':
      return result('denied', 'Declined', 'Nobody was signed in.');
    default:
      return result('error', 'Unexpected answer', reasonText(m.result, 'The server answered something this app does not know.'));
  }
}

function result(kind, title, text) {
  byId('result-icon').className = 'state-icon ' + (kind === 'ok' ? 'state-icon-ok' : kind === 'denied' ? 'state-icon-stop' : 'state-icon-alert');
  byId('screen-result').dataset.result = kind;
  setText('result-title', title);
  setText('result-text', text);
  show('result');
}

start();
