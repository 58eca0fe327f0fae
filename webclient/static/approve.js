// qrauth transaction approval page (/approve#ID.TOKEN): a relying site
// sends the browser here with a link from the API. The page shows the
// transaction text beside its QR code and then either takes the offline
// code the app shows (kind "offline") or follows the phone's online
// decision (kind "online"). The link's fragment never leaves the browser
// except in the body of this page's own calls.
//
// <main id="approve" data-state="..."> is one of loading, offline, online,
// done, ended.
'use strict';

(function () {
  const q = window.qrauth;
  const byId = q.byId;

  const root = byId('approve');
  const statusLine = byId('tx-status');
  const form = byId('tx-code-form');
  const otp = byId('tx-otp');
  const codeError = byId('tx-code-error');
  const submit = byId('tx-code-submit');

  const token = location.hash.slice(1);
  let view = null;
  let stopped = false;

  function show(state, text) {
    q.showState(root, state);
    byId('tx-qr').parentElement.hidden = !(state === 'offline' || state === 'online') || !view || !view.qr;
    if (text) q.say(statusLine, text);
  }

  function end(title, message) {
    stopped = true;
    byId('tx-ended-title').textContent = title;
    byId('tx-ended-message').textContent = message;
    show('ended', title + '. ' + message);
  }

  const endings = {
    denied: ['Declined', 'The transaction was declined on the phone. Nothing was approved.'],
    expired: ['This request has expired', 'Nothing was approved. Go back to the site to start again.'],
    cancelled: ['Cancelled', 'The site cancelled this request. Nothing was approved.'],
    failed: ['This code can no longer be used', 'Go back to the site to start again.'],
    locked: ['Offline codes are locked', 'Too many wrong numbers were typed. Nothing was approved.'],
  };

  function render(v) {
    view = v;
    root.dataset.kind = v.kind;
    byId('tx-text').textContent = v.text || '(no details)';
    byId('steps-offline').hidden = v.kind !== 'offline';
    byId('steps-online').hidden = v.kind !== 'online';
    if (v.qr) byId('tx-qr').src = v.qr;
    if (v.status === 'approved' || v.status === 'succeeded') {
      stopped = true;
      show('done', 'Approved.');
      return;
    }
    if (endings[v.status]) {
      end(endings[v.status][0], endings[v.status][1]);
      return;
    }
    if (v.kind === 'offline') {
      otp.maxLength = v.otp_length;
      otp.placeholder = '0'.repeat(v.otp_length);
      show('offline', 'Scan the code with the qrauth app and type the number it shows.');
      return;
    }
    if (v.scanned) {
      byId('online-title').textContent = 'Scanned — check your phone';
      byId('online-text').textContent = 'Approve on the phone if it shows exactly this text.';
    }
    show('online', v.scanned ? 'Scanned. Approve on your phone.' : 'Scan the code with the qrauth app.');
  }

  async function load(wait) {
    const body = { token: token };
    if (wait) {
      body.wait = 20;
      body.scanned = !!(view && view.scanned);
    }
    const res = await q.api('POST', '/api/approve/view', body);
    return res.data;
  }

  // follow long-polls an online transaction until it ends.
  async function follow() {
    let failures = 0;
    while (!stopped) {
      try {
        render(await load(true));
        failures = 0;
      } catch (err) {
        if (err.status && err.status < 500 && err.status !== 429) {
          end('This link cannot be used', err.message);
          return;
        }
        failures = Math.min(failures + 1, 5);
        await new Promise(function (r) { setTimeout(r, 1000 * Math.pow(2, failures)); });
      }
    }
  }

  async function verify() {
    const code = otp.value.replace(/\D/g, '');
    if (!view || code.length !== view.otp_length) {
      codeError.textContent = 'The number has ' + (view ? view.otp_length : 6) + ' digits.';
      codeError.hidden = false;
      otp.focus();
      return;
    }
    codeError.hidden = true;
    submit.disabled = true;
    try {
      const res = await q.api('POST', '/api/approve/verify', { token: token, otp: code });
      render(res.data);
    } catch (err) {
      submit.disabled = false;
      const reason = err.data && err.data.reason;
      if (reason === 'wrong_code' || reason === 'malformed_otp' || err.status === 429) {
        otp.value = '';
        codeError.textContent = err.status === 429 ? q.TOO_MANY + '.' : err.message;
        codeError.hidden = false;
        otp.focus();
        return;
      }
      end('Not approved', err.message);
    }
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    verify();
  });

  otp.addEventListener('input', function () {
    const digits = otp.value.replace(/\D/g, '');
    if (digits !== otp.value) otp.value = digits;
  });

  async function start() {
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/.test(token)) {
      end('This link is not valid', 'Go back to the site that sent you here.');
      return;
    }
    try {
      render(await load(false));
    } catch (err) {
      end('This link cannot be used', err.message);
      return;
    }
    if (view.kind === 'online' && !stopped) follow();
  }

  window.addEventListener('pagehide', function () {
    stopped = true;
  });

  // Another link opened in this tab changes only the fragment, which does
  // not reload the page by itself.
  window.addEventListener('hashchange', function () {
    location.reload();
  });

  start();
})();
