// qrauth login page: shows the QR code of a room on /ws/browser and follows
// it until the phone approves, then trades the ticket for a session.
//
// <main id="login" data-state="..."> holds the current state, one of
// connecting, reconnecting, waiting, scanned, signup, approved, denied,
// expired, error; the <section data-state="..."> of that state is shown.
'use strict';

(function () {
  const q = window.qrauth;
  const byId = q.byId;

  const root = byId('login');
  const statusLine = byId('status');
  const qr = byId('qr');
  const userCode = byId('user-code');
  const userCodeLine = byId('user-code-line');
  const link = byId('qr-link');
  const linkLine = byId('qr-link-line');
  const linkCopied = byId('qr-link-copied');
  const form = byId('signup-form');
  const nameInput = byId('signup-name');
  const emailInput = byId('signup-email');
  const formError = byId('signup-error');
  const submit = byId('signup-submit');
  const sent = byId('signup-sent');
  const countdown = new q.Countdown(byId('countdown'), byId('countdown-bar'));

  const words = {
    connecting: 'Getting a sign-in code…',
    reconnecting: 'Reconnecting…',
    waiting: 'Ready: scan the code with the qrauth app.',
    scanned: 'Scanned — confirm on your phone.',
    signup: 'New account: fill in the form here or on your phone.',
    approved: 'Approved — signing you in…',
    denied: 'Sign-in was declined on the phone.',
    expired: 'This code has expired.',
  };

  let current = '';

  function show(state, text) {
    if (state !== 'waiting') countdown.stop();
    if (state !== 'error') root.removeAttribute('data-error');
    q.showState(root, state);
    q.say(statusLine, text || words[state] || '');
    current = state;
  }

  function showError(err) {
    const tooMany = err.code === 'rate_limited';
    // A disabled account is no failure of the page: say what it is.
    const disabled = err.reason === 'account_disabled';
    byId('error-title').textContent = tooMany ? q.TOO_MANY : disabled ? 'Account disabled' : 'Something went wrong';
    byId('error-message').textContent = tooMany
      ? 'Wait a moment before you ask for a new code.'
      : err.message;
    show('error', tooMany ? q.TOO_MANY + '.' : 'Error: ' + err.message);
    root.dataset.error = err.reason || err.code || 'error';
  }

  function resetForm() {
    form.reset();
    formError.hidden = true;
    formError.textContent = '';
    emailInput.removeAttribute('aria-invalid');
    submit.disabled = false;
    sent.hidden = true;
  }

  async function exchange(ticket) {
    if (!ticket) {
      showError({ code: 'internal', message: 'The server did not send a sign-in ticket. Please try again.' });
      return;
    }
    let res;
    try {
      res = await q.api('POST', '/api/session', { ticket: ticket });
    } catch (err) {
      showError({ code: err.status === 429 ? 'rate_limited' : 'session', reason: 'session_' + err.status, message: err.message });
      return;
    }
    // A policy may require another step (such as a second factor); the
    // server then names the page that asks for it.
    let next = res && res.data && res.data.next;
    // Signed in: a page that sent the browser here to sign in (such as
    // forward auth's /authz/signin, which checks its own return address)
    // comes next, given as ?next=PATH on this site.
    if (next === '/account') next = new URLSearchParams(location.search).get('next') || next;
    location.assign(q.safeNext(next));
  }

  const room = new q.Room('/ws/browser', {
    onState: function (state, msg) {
      switch (state) {
        case 'waiting':
          if (typeof msg.qr === 'string' && msg.qr.startsWith('data:image/')) qr.src = msg.qr;
          // The typed code names the same room as the QR code and is
          // replaced with it (protocol.md §7.9).
          userCode.textContent = typeof msg.user_code === 'string' ? msg.user_code : '';
          userCodeLine.hidden = !userCode.textContent;
          showLink(msg.url);
          countdown.start(msg.expires_in);
          show('waiting');
          break;
        case 'signup':
          if (current !== 'signup') {
            resetForm();
            show('signup');
            nameInput.focus();
          }
          break;
        case 'approved':
          show('approved');
          exchange(msg.ticket);
          break;
        case 'error':
          showError(msg);
          break;
        case 'linked':
          // Not expected on the login page; a link room only opens from the
          // account page.
          location.assign('/account');
          break;
        default:
          show(state);
      }
    },
    // A profile the server refuses ends the room (close 4400), so the
    // form is checked here before sending and the refusal shows as an error.
  });

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    const name = nameInput.value.trim();
    const email = emailInput.value.trim();
    // The server counts bytes; a rejected field would end the room.
    if (new TextEncoder().encode(name).length > 100) {
      formError.textContent = 'The name must be at most 100 characters on one line.';
      formError.hidden = false;
      nameInput.focus();
      return;
    }
    if (email && !emailInput.validity.valid) {
      formError.textContent = 'That does not look like an e-mail address (name@example.com).';
      formError.hidden = false;
      emailInput.setAttribute('aria-invalid', 'true');
      emailInput.focus();
      return;
    }
    formError.hidden = true;
    emailInput.removeAttribute('aria-invalid');
    if (!room.send({ type: 'profile', name: name, email: email })) {
      formError.textContent = 'Lost the connection to the server. Fill in the form on your phone, or get a new code.';
      formError.hidden = false;
      return;
    }
    submit.disabled = true;
    sent.hidden = false;
  });

  // The QR code's link as text (the qr message's url, protocol.md §6.2),
  // for `qrauth-app scan URL` and for a phone that gets it another way. It
  // is replaced with the code; a "Copied" for the old link is cleared.
  function showLink(url) {
    url = typeof url === 'string' && /^https?:\/\//.test(url) ? url : '';
    if (link.textContent !== url) {
      link.textContent = url;
      linkCopied.textContent = '';
    }
    linkLine.hidden = !url;
  }

  // copyLink puts the link on the clipboard. Where the page may not write
  // it (no permission, or plain http on another host: not a secure
  // context), the link is selected instead so that Ctrl+C copies it.
  async function copyLink() {
    const url = link.textContent;
    if (!url) return;
    try {
      if (!navigator.clipboard) throw new Error('no clipboard');
      await navigator.clipboard.writeText(url);
      q.say(linkCopied, 'Copied');
    } catch (e) {
      window.getSelection().selectAllChildren(link);
      q.say(linkCopied, 'Link selected: press Ctrl+C to copy it');
    }
  }
  byId('qr-link-copy').addEventListener('click', copyLink);

  function restart() {
    room.start();
  }
  byId('retry-now').addEventListener('click', restart);
  byId('denied-new').addEventListener('click', restart);
  byId('expired-new').addEventListener('click', restart);
  byId('error-retry').addEventListener('click', restart);

  // Someone who is already signed in never gets here: the server sends
  // them on to /account (asking GET /api/me from the page logged a 401 in
  // the console of every anonymous visitor).
  function init() {
    room.start();
    showSite();
  }

  // A site that sent the browser here through OpenID Connect (?oidc=1):
  // the server says which one, by its registered name, shown as text. The
  // URL only hints; its words are never shown.
  async function showSite() {
    if (!new URLSearchParams(location.search).has('oidc')) return;
    let res;
    try {
      res = await q.api('GET', '/oidc/pending');
    } catch (e) {
      return; // the page works without it
    }
    const name = res.data && typeof res.data.client_name === 'string' ? res.data.client_name.trim() : '';
    if (!name) return;
    byId('login-site-name').textContent = name;
    byId('login-site').hidden = false;
    document.title = 'Sign in to ' + name + ' · qrauth';
  }

  init();
})();
