// qrauth verify page: the second step of a sign-in, after the QR scan. It
// asks for the code of the user's authenticator app (OATH TOTP/HOTP), or,
// when the deployment requires one and the user has none, sets one up
// first. The session is only issued once a code is accepted.
//
// <main id="verify" data-state="loading|verify|enrol|locked|expired|error">;
// the <section data-state="..."> of that state is shown.
'use strict';

(function () {
  const q = window.qrauth;
  const byId = q.byId;

  const root = byId('verify');
  const sections = root.querySelectorAll('section[data-state]');
  const statusLine = byId('verify-status');
  let digits = 6;

  function show(state, text) {
    root.dataset.state = state;
    for (const s of sections) s.hidden = s.dataset.state !== state;
    if (text !== undefined) statusLine.textContent = text;
  }

  function showError(message) {
    byId('verify-error-message').textContent = message;
    show('error', 'Error: ' + message);
  }

  // groupSecret writes a Base32 key in groups of four, as apps accept it.
  function groupSecret(s) {
    return String(s || '').replace(/(.{4})(?=.)/g, '$1 ');
  }

  // failed decides what an API error means for the page: false when the
  // caller should show it next to the form.
  function failed(err) {
    const reason = err.data && err.data.reason;
    if (reason === 'oath_locked') {
      show('locked', 'Your authenticator is locked.');
      return true;
    }
    if (err.status === 401) {
      show('expired', 'This sign-in has ended.');
      return true;
    }
    return false;
  }

  function safeNext(next) {
    return typeof next === 'string' && next.charAt(0) === '/' && next.charAt(1) !== '/' ? next : '/account';
  }

  // A code form: posts the code, then follows the server to the next page.
  function codeForm(form, input, errorEl, button) {
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      const code = input.value.replace(/[\s-]/g, '');
      if (!/^[0-9]+$/.test(code) || code.length !== digits) {
        errorEl.textContent = 'Enter the ' + digits + '-digit code your authenticator app shows.';
        errorEl.hidden = false;
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
      }
      errorEl.hidden = true;
      input.removeAttribute('aria-invalid');
      button.disabled = true;
      let res;
      try {
        res = await q.api('POST', '/api/oath/signin', { code: code });
      } catch (err) {
        button.disabled = false;
        if (failed(err)) return;
        errorEl.textContent = err.message;
        errorEl.hidden = false;
        input.setAttribute('aria-invalid', 'true');
        input.value = '';
        input.focus();
        return;
      }
      statusLine.textContent = 'Code accepted. Signing you in…';
      location.assign(safeNext(res.data && res.data.next));
    });
  }

  codeForm(byId('verify-form'), byId('verify-code'), byId('verify-error'), byId('verify-submit'));
  codeForm(byId('enrol-form'), byId('enrol-code'), byId('enrol-error'), byId('enrol-submit'));

  async function enrol() {
    let res;
    try {
      res = await q.api('POST', '/api/oath/signin/enrol');
    } catch (err) {
      if (!failed(err)) showError(err.message);
      return;
    }
    const d = res.data || {};
    if (typeof d.qr === 'string' && d.qr.startsWith('data:image/')) byId('enrol-qr').src = d.qr;
    byId('enrol-secret').textContent = groupSecret(d.secret);
    if (d.digits) digits = d.digits;
    show('enrol', 'Set up an authenticator app to finish signing in.');
    byId('enrol-code').focus();
  }

  // firstStep says what the person already did, from the methods the
  // server lists for this sign-in (the last one is the step just passed).
  function firstStep(methods) {
    const list = Array.isArray(methods) ? methods : [];
    switch (list[list.length - 1]) {
      case 'qr': return 'Your phone approved the sign-in.';
      case 'offline': return 'Your code from the phone was accepted.';
      case 'badge_secure':
      case 'badge_insecure': return 'Your badge was accepted.';
      case 'password': return 'Your badge and password were accepted.';
      default: return 'The first step of the sign-in is done.';
    }
  }

  async function init() {
    show('loading');
    let res;
    try {
      res = await q.api('GET', '/api/oath/signin');
    } catch (err) {
      if (!failed(err)) showError(err.message);
      return;
    }
    const d = res.data || {};
    if (d.digits) digits = d.digits;
    if (d.issuer) byId('verify-issuer').textContent = d.issuer;
    const who = d.name ? 'Signing in as ' + d.name + '. ' : '';
    byId('verify-who').textContent = who + firstStep(d.methods) + ' One more step:';
    switch (d.state) {
      case 'verify':
        byId('verify-code').placeholder = digits === 8 ? '12345678' : '123456';
        show('verify', 'Enter the code of your authenticator app.');
        byId('verify-code').focus();
        break;
      case 'enrol':
        await enrol();
        break;
      case 'locked':
        show('locked', 'Your authenticator is locked.');
        break;
      default:
        showError('The server asked for a step this page does not know. Reload the page.');
    }
  }

  byId('verify-retry').addEventListener('click', init);
  init();
})();
