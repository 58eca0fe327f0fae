// qrauth account page: profile, signed-in browsers, phones, and linking a
// new phone over /ws/browser?mode=link.
//
// <main id="account" data-state="loading|ready|error">; the link panel
// <div id="link-qr" data-state="idle|connecting|reconnecting|waiting|scanned|
// linked|denied|expired|error">. Every piece of data goes into the page with
// textContent.
'use strict';

(function () {
  const q = window.qrauth;
  const byId = q.byId;

  const root = byId('account');
  const accountStatus = byId('account-status');
  let me = null;

  function announce(text) {
    accountStatus.textContent = text;
  }

  function signedOut() {
    location.replace('/');
  }

  // failed handles an API error: a lost session leaves the page, anything
  // else is shown in el.
  function failed(err, el) {
    if (err.status === 401) {
      signedOut();
      return;
    }
    el.textContent = err.message;
    el.hidden = false;
  }

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function icon(className) {
    const e = el('span', className);
    e.setAttribute('aria-hidden', 'true');
    return e;
  }

  function setBusy(list, busy) {
    list.setAttribute('aria-busy', busy ? 'true' : 'false');
  }

  function emptyItem(text) {
    return el('li', 'item item-empty', text);
  }

  // Profile

  const profileForm = byId('profile-form');
  const profileView = byId('profile-view');
  const profileEdit = byId('profile-edit');
  const profileError = byId('profile-error');
  const profileName = byId('profile-name');
  const profileEmail = byId('profile-email');
  const profileSave = byId('profile-save');

  function showValue(dd, value, missing) {
    dd.textContent = value || missing;
    dd.classList.toggle('missing', !value);
  }

  function renderUser(user) {
    me = user || {};
    showValue(byId('user-name'), me.name, 'No name');
    showValue(byId('user-email'), me.email, 'No e-mail');
    showValue(byId('user-created'), me.created_at ? q.formatDate(me.created_at) : '', '—');
    byId('greeting').textContent = me.name
      ? 'Signed in as ' + me.name + '.'
      : me.email ? 'Signed in as ' + me.email + '.' : 'You are signed in.';
  }

  function openProfileForm(open) {
    profileForm.hidden = !open;
    profileView.hidden = open;
    profileEdit.hidden = open;
    profileEdit.setAttribute('aria-expanded', open ? 'true' : 'false');
    profileError.hidden = true;
    profileError.textContent = '';
    profileEmail.removeAttribute('aria-invalid');
    profileSave.disabled = false;
    if (open) {
      profileName.value = (me && me.name) || '';
      profileEmail.value = (me && me.email) || '';
      profileName.focus();
    } else {
      profileEdit.focus();
    }
  }

  profileEdit.addEventListener('click', function () { openProfileForm(true); });
  byId('profile-cancel').addEventListener('click', function () { openProfileForm(false); });
  profileForm.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape') openProfileForm(false);
  });

  profileForm.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    profileError.hidden = true;
    profileEmail.removeAttribute('aria-invalid');
    profileSave.disabled = true;
    try {
      const res = await q.api('PATCH', '/api/me', {
        name: profileName.value.trim(),
        email: profileEmail.value.trim(),
      });
      renderUser((res.data && res.data.user) || {
        ...me, name: profileName.value.trim(), email: profileEmail.value.trim(),
      });
      openProfileForm(false);
      announce('Profile saved.');
    } catch (err) {
      profileSave.disabled = false;
      if (err.data && err.data.reason === 'invalid_email') profileEmail.setAttribute('aria-invalid', 'true');
      failed(err, profileError);
    }
  });

  // Sessions

  const sessionsList = byId('sessions');
  const sessionsError = byId('sessions-error');

  function sessionLabel(s) {
    if (s.browser && s.os) return s.browser + ' on ' + s.os;
    if (s.browser || s.os) return s.browser || s.os;
    if (s.user_agent) return s.user_agent.length > 60 ? s.user_agent.slice(0, 57) + '…' : s.user_agent;
    return 'Unknown browser';
  }

  function renderSessions(sessions) {
    const items = [];
    // The current browser first, then the most recently active.
    sessions.sort(function (a, b) {
      if (a.current !== b.current) return a.current ? -1 : 1;
      return String(b.last_seen_at || '').localeCompare(String(a.last_seen_at || ''));
    });
    for (const s of sessions) {
      const li = el('li', 'item');
      li.dataset.sessionId = s.id;
      if (s.current) li.classList.add('item-current');

      li.appendChild(icon('item-icon item-icon-browser'));
      const body = el('div', 'item-body');
      const title = el('p', 'item-title', sessionLabel(s));
      if (s.current) {
        title.appendChild(document.createTextNode(' '));
        title.appendChild(el('span', 'badge session-current', 'This browser'));
      }
      body.appendChild(title);
      if (s.user_agent) title.title = s.user_agent;
      body.appendChild(el('p', 'item-meta', [
        s.ip ? 'IP ' + s.ip : '',
        'Last active ' + q.formatDate(s.last_seen_at),
      ].filter(Boolean).join(' · ')));
      body.appendChild(el('p', 'item-meta', 'Signed in ' + q.formatDate(s.created_at) +
        ' · Expires ' + q.formatDate(s.expires_at)));
      li.appendChild(body);

      const btn = el('button', 'btn btn-danger btn-small', 'Sign out');
      btn.type = 'button';
      btn.dataset.sessionId = s.id;
      btn.setAttribute('aria-label', 'Sign out ' + sessionLabel(s) + (s.current ? ' (this browser)' : ''));
      btn.addEventListener('click', function () { revoke(s, btn); });
      li.appendChild(btn);
      items.push(li);
    }
    if (!items.length) items.push(emptyItem('No signed-in browsers.'));
    sessionsList.replaceChildren(...items);
  }

  async function loadSessions() {
    setBusy(sessionsList, true);
    try {
      const res = await q.api('GET', '/api/sessions');
      sessionsError.hidden = true;
      renderSessions((res.data && Array.isArray(res.data.sessions)) ? res.data.sessions : []);
    } catch (err) {
      sessionsList.replaceChildren(emptyItem('Could not load the list.'));
      failed(err, sessionsError);
    } finally {
      setBusy(sessionsList, false);
    }
  }

  async function revoke(s, btn) {
    btn.disabled = true;
    sessionsError.hidden = true;
    try {
      await q.api('DELETE', '/api/sessions/' + encodeURIComponent(s.id));
    } catch (err) {
      btn.disabled = false;
      failed(err, sessionsError);
      return;
    }
    if (s.current) {
      signedOut();
      return;
    }
    announce('Signed out ' + sessionLabel(s) + '.');
    await loadSessions();
    // The button that had focus is gone; keep the keyboard in the list.
    const next = sessionsList.querySelector('button');
    if (next) next.focus();
  }

  // Devices

  const devicesList = byId('devices');
  const devicesError = byId('devices-error');

  function renderDevices(devices) {
    const items = [];
    for (const d of devices) {
      const li = el('li', 'item');
      li.dataset.deviceId = d.id;
      li.appendChild(icon('item-icon item-icon-phone'));
      const body = el('div', 'item-body');
      body.appendChild(el('p', 'item-title', d.name || 'Phone'));
      body.appendChild(el('p', 'item-meta', 'Added ' + q.formatDate(d.created_at) +
        ' · Last used ' + q.formatDate(d.last_seen_at)));
      li.appendChild(body);
      const btn = el('button', 'btn btn-danger btn-small', 'Remove');
      btn.type = 'button';
      btn.dataset.deviceId = d.id;
      btn.setAttribute('aria-label', 'Remove ' + (d.name || 'phone'));
      btn.addEventListener('click', function () { removeDevice(d, btn, devices.length); });
      li.appendChild(btn);
      items.push(li);
    }
    if (!items.length) items.push(emptyItem('No phones yet.'));
    devicesList.replaceChildren(...items);
  }

  // removeDevice forgets a phone (say, a lost one): its key signs nobody
  // in any more. Removing the last one needs a second thought: without a
  // phone, only this browser can link a new one.
  async function removeDevice(d, btn, count) {
    const name = d.name || 'this phone';
    const warning = count === 1
      ? 'Remove ' + name + '? It is your only phone: link a new one right after, from this page, or you will not be able to sign in again.'
      : 'Remove ' + name + '? It will no longer be able to sign you in.';
    if (!window.confirm(warning)) return;
    btn.disabled = true;
    devicesError.hidden = true;
    try {
      await q.api('DELETE', '/api/devices/' + encodeURIComponent(d.id));
    } catch (err) {
      btn.disabled = false;
      failed(err, devicesError);
      return;
    }
    announce('Removed ' + name + '.');
    await loadDevices();
  }

  async function loadDevices() {
    setBusy(devicesList, true);
    try {
      const res = await q.api('GET', '/api/devices');
      devicesError.hidden = true;
      renderDevices((res.data && Array.isArray(res.data.devices)) ? res.data.devices : []);
    } catch (err) {
      devicesList.replaceChildren(emptyItem('Could not load the list.'));
      failed(err, devicesError);
    } finally {
      setBusy(devicesList, false);
    }
  }

  // Link a phone

  const linkPanel = byId('link-qr');
  const linkButton = byId('link-phone');
  const linkImg = byId('link-qr-img');
  const linkSteps = linkPanel.querySelectorAll('.link-step[data-state]');
  const linkStatus = byId('link-status');
  const linkCountdown = new q.Countdown(byId('link-countdown'), byId('link-countdown-bar'));

  const linkWords = {
    connecting: 'Getting a code to link a phone…',
    reconnecting: 'Reconnecting…',
    waiting: 'Ready: scan the code with the qrauth app on the new phone.',
    scanned: 'Scanned — confirm on the new phone.',
    linked: 'Phone linked.',
    denied: 'Linking was declined on the phone.',
    expired: 'This code has expired.',
  };

  function showLink(state, text) {
    if (state !== 'waiting') linkCountdown.stop();
    linkPanel.dataset.state = state;
    for (const s of linkSteps) s.hidden = s.dataset.state !== state;
    const line = text || linkWords[state] || '';
    if (linkStatus.textContent !== line) linkStatus.textContent = line;
  }

  const linkRoom = new q.Room('/ws/browser?mode=link', {
    onState: function (state, msg) {
      switch (state) {
        case 'waiting':
          if (typeof msg.qr === 'string' && msg.qr.startsWith('data:image/')) linkImg.src = msg.qr;
          linkCountdown.start(msg.expires_in);
          showLink('waiting');
          break;
        case 'linked':
        case 'approved': {
          const name = msg.device && msg.device.name;
          byId('link-device-name').textContent = name ? name + ' can now sign you in.' : 'The new phone can now sign you in.';
          showLink('linked', name ? 'Phone linked: ' + name + '.' : 'Phone linked.');
          loadDevices();
          break;
        }
        case 'signup':
          showLink('scanned');
          break;
        case 'error': {
          if (msg.reason === 'handshake_refused') {
            // The socket may have been refused because the session ended.
            q.api('GET', '/api/me').catch(function (err) {
              if (err.status === 401) signedOut();
            });
          }
          const tooMany = msg.code === 'rate_limited';
          byId('link-error-title').textContent = tooMany ? q.TOO_MANY : 'Something went wrong';
          byId('link-error-message').textContent = tooMany ? 'Wait a moment before you ask for a new code.' : msg.message;
          showLink('error', tooMany ? q.TOO_MANY + '.' : 'Error: ' + msg.message);
          break;
        }
        default:
          showLink(state);
      }
    },
  });

  function openLink() {
    linkPanel.hidden = false;
    linkButton.disabled = true;
    linkButton.setAttribute('aria-expanded', 'true');
    linkRoom.start();
    byId('link-close').focus();
  }

  function closeLink() {
    linkRoom.stop();
    linkCountdown.stop();
    linkPanel.hidden = true;
    linkPanel.dataset.state = 'idle';
    linkImg.removeAttribute('src');
    linkButton.disabled = false;
    linkButton.setAttribute('aria-expanded', 'false');
    linkButton.focus();
  }

  linkButton.addEventListener('click', openLink);
  byId('link-close').addEventListener('click', closeLink);
  byId('link-done').addEventListener('click', closeLink);
  for (const id of ['link-denied-new', 'link-expired-new', 'link-error-retry']) {
    byId(id).addEventListener('click', function () { linkRoom.start(); });
  }

  // Sign out

  const logout = byId('logout');
  logout.addEventListener('click', async function () {
    logout.disabled = true;
    try {
      await q.api('POST', '/api/logout');
    } catch (err) {
      if (err.status !== 401) {
        logout.disabled = false;
        showPageError(err.message, false);
        return;
      }
    }
    signedOut();
  });

  // Page

  function showPageError(text, retry) {
    byId('account-error-text').textContent = text;
    byId('account-retry').hidden = !retry;
    byId('account-error').hidden = false;
  }

  byId('account-retry').addEventListener('click', function () {
    byId('account-error').hidden = true;
    init();
  });

  // Session watch. A session can end while this page is open: signed out
  // from another browser, revoked by an administrator, expired. The page
  // notices within a few seconds and says so, instead of failing at the
  // next click. It asks GET /api/me every WATCH_MS while the tab is
  // visible (a hidden tab asks nothing) and at once when it is shown again.
  const WATCH_MS = 4000;
  let watchTimer = 0;
  let ended = false;

  function watchSession() {
    clearTimeout(watchTimer);
    watchTimer = 0;
    if (!ended && !document.hidden) watchTimer = setTimeout(checkSession, WATCH_MS);
  }

  async function checkSession() {
    try {
      await q.api('GET', '/api/me');
    } catch (err) {
      if (err.status === 401) {
        showSignedOut();
        return;
      }
      // Offline or a server hiccup: ask again later.
    }
    watchSession();
  }

  function showSignedOut() {
    if (ended) return;
    ended = true;
    clearTimeout(watchTimer);
    linkRoom.stop();
    linkCountdown.stop();
    root.dataset.state = 'signed-out';
    logout.hidden = true;
    byId('account-error').hidden = true;
    byId('signed-out').hidden = false;
    byId('sign-in-again').focus();
  }

  document.addEventListener('visibilitychange', function () {
    if (document.hidden) {
      clearTimeout(watchTimer);
      watchTimer = 0;
    } else if (root.dataset.state === 'ready') {
      checkSession();
    }
  });

  async function init() {
    root.dataset.state = 'loading';
    let res;
    try {
      res = await q.api('GET', '/api/me');
    } catch (err) {
      if (err.status === 401) {
        signedOut();
        return;
      }
      root.dataset.state = 'error';
      byId('greeting').textContent = 'Your account could not be loaded.';
      showPageError(err.message, true);
      return;
    }
    if (!res.data || !res.data.user) {
      signedOut();
      return;
    }
    renderUser(res.data.user);
    await Promise.all([loadSessions(), loadDevices()]);
    root.dataset.state = 'ready';
    // The scripts of other flows add their sections on this event.
    document.dispatchEvent(new CustomEvent('qrauth:account-ready', { detail: { user: res.data.user } }));
    watchSession();
  }

  init();
})();
