// qrauth "sign in with a code" page (/offline): the person names the
// account, the page shows the offline challenge QR code, the qrauth app
// (with or without network) shows a number, the person types it here.
//
// <main id="offline" data-state="..."> is one of identify, code, busy,
// ended; the <section data-state="..."> of that state is shown.
'use strict';

(function () {
  const q = window.qrauth;
  const byId = q.byId;

  const root = byId('offline');
  const statusLine = byId('status');
  const identifyForm = byId('identify-form');
  const identifier = byId('identifier');
  const identifyError = byId('identify-error');
  const identifySubmit = byId('identify-submit');
  const codeForm = byId('code-form');
  const otp = byId('otp');
  const codeError = byId('code-error');
  const codeSubmit = byId('code-submit');
  const otherPhone = byId('other-phone');
  const left = byId('offline-left');

  let session = null; // the answer of POST /api/offline/signin
  let choice = 0;
  let timer = 0;

  const methodWords = {
    OFFLINE_DEVICE: 'no PIN needed',
    OFFLINE_PIN: 'with your offline PIN',
  };

  function show(state, text) {
    q.showState(root, state);
    if (text !== undefined) q.say(statusLine, text);
  }

  function fieldError(el, input, message) {
    el.textContent = message;
    el.hidden = !message;
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }

  function end(title, message) {
    stopTimer();
    byId('ended-title').textContent = title;
    byId('ended-message').textContent = message;
    show('ended', title + '. ' + message);
    byId('ended-retry').focus();
  }

  function stopTimer() {
    clearTimeout(timer);
    timer = 0;
  }

  // tick shows the time left until the session expires.
  function tick() {
    if (!session) return;
    const ms = new Date(session.expires_at).getTime() - Date.now();
    if (!(ms > 0)) {
      end('This code has expired', 'For your safety a code works only for a few minutes. Start again for a new one.');
      return;
    }
    const s = Math.ceil(ms / 1000);
    left.textContent = Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
    timer = setTimeout(tick, ms % 1000 || 1000);
  }

  async function begin() {
    const ident = identifier.value.trim();
    if (!ident) {
      fieldError(identifyError, identifier, 'Enter the e-mail address of your account.');
      identifier.focus();
      return;
    }
    fieldError(identifyError, identifier, '');
    identifySubmit.disabled = true;
    let res;
    try {
      res = await q.api('POST', '/api/offline/signin', { identifier: ident, choice: choice });
    } catch (err) {
      identifySubmit.disabled = false;
      if (root.dataset.state !== 'identify') show('identify');
      fieldError(identifyError, identifier, err.status === 429 ? q.TOO_MANY + '.' : err.message);
      identifier.focus();
      return;
    }
    identifySubmit.disabled = false;
    session = res.data;
    choice = session.choice;
    byId('offline-qr').src = session.qr;
    byId('offline-device').textContent = session.device_name || 'your phone';
    byId('offline-method').textContent = methodWords[session.method] || session.method;
    byId('steps-context').textContent = session.context;
    otp.value = '';
    otp.maxLength = session.otp_length;
    otp.placeholder = '0'.repeat(session.otp_length);
    fieldError(codeError, otp, '');
    codeSubmit.disabled = false;
    otherPhone.hidden = !(session.choices > 1);
    show('code', 'Scan the code with the qrauth app and type the ' + session.otp_length + '-digit number it shows.');
    stopTimer();
    tick();
    otp.focus();
  }

  async function cancel() {
    const s = session;
    session = null;
    stopTimer();
    if (!s) return;
    try {
      await q.api('POST', '/api/offline/signin/' + encodeURIComponent(s.id) + '/cancel');
    } catch (e) {
      // Nothing to do: the session expires on its own.
    }
  }

  async function verify() {
    const code = otp.value.replace(/\D/g, '');
    if (!session) return;
    if (code.length !== session.otp_length) {
      fieldError(codeError, otp, 'The number has ' + session.otp_length + ' digits.');
      otp.focus();
      return;
    }
    fieldError(codeError, otp, '');
    codeSubmit.disabled = true;
    let res;
    try {
      res = await q.api('POST', '/api/offline/signin/' + encodeURIComponent(session.id) + '/verify', { otp: code });
    } catch (err) {
      codeSubmit.disabled = false;
      const reason = err.data && err.data.reason;
      if (reason === 'wrong_code' || reason === 'malformed_otp') {
        otp.value = '';
        fieldError(codeError, otp, err.message);
        otp.focus();
        return;
      }
      if (err.status === 429) {
        fieldError(codeError, otp, q.TOO_MANY + '.');
        return;
      }
      session = null;
      if (reason === 'method_locked') {
        end('Offline codes are locked', err.message);
      } else if (reason === 'session_expired') {
        end('This code has expired', 'For your safety a code works only for a few minutes. Start again for a new one.');
      } else {
        end('This code can no longer be used', err.message);
      }
      return;
    }
    stopTimer();
    show('busy', 'Signing you in…');
    location.assign(q.safeNext(res && res.data && res.data.next));
  }

  identifyForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    begin();
  });

  codeForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    verify();
  });

  // Only digits; a full code submits itself, as people expect from
  // one-time code fields.
  otp.addEventListener('input', function () {
    const digits = otp.value.replace(/\D/g, '');
    if (digits !== otp.value) otp.value = digits;
    if (session && digits.length === session.otp_length && !codeSubmit.disabled) verify();
  });

  otherPhone.addEventListener('click', async function () {
    await cancel();
    choice += 1;
    begin();
  });

  byId('start-over').addEventListener('click', async function () {
    await cancel();
    choice = 0;
    show('identify', 'Enter the e-mail address of your account.');
    identifier.focus();
  });

  byId('ended-retry').addEventListener('click', function () {
    choice = 0;
    session = null;
    show('identify', 'Enter the e-mail address of your account.');
    identifier.focus();
  });

  window.addEventListener('pagehide', function () {
    stopTimer();
  });

  show('identify', 'Enter the e-mail address of your account.');
})();
