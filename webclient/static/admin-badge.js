// admin-badge: the badge actions of each user row on the admin page (roles
// admin and helpdesk): list the user's badges, revoke one, issue a new one
// and download its PDF and PNG. Issuing and revoking are audited on the
// server. Rows get nothing when badges are off (no "badge" method).
'use strict';

(function () {
  const q = window.qrauth;
  const el = q.el;

  function kindName(kind) {
    return kind === 'secure' ? 'Secure badge' : 'Insecure badge';
  }

  function day(s) {
    if (!s) return '';
    const d = new Date(s);
    return isNaN(d.getTime()) ? '' : d.toLocaleDateString();
  }

  const statusWords = {
    active: 'in use',
    revoked: 'revoked',
    expired: 'expired',
    password_changed: 'dead: password changed',
  };

  function blobURL(base64, type) {
    const bin = atob(base64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return URL.createObjectURL(new Blob([bytes], { type: type }));
  }

  document.addEventListener('qrauth:admin-user', function (ev) {
    const { user, actions } = ev.detail;
    if (!user.methods || !('badge' in user.methods)) return;
    const who = user.name || user.id;
    const api = '/admin/api/badge/users/' + encodeURIComponent(user.id);
    const idp = 'badge-' + user.id + '-';

    const box = el('div', 'badge-admin');
    box.dataset.userId = user.id;
    const n = Number(user.methods.badge) || 0;
    const line = el('p', 'item-meta', 'Badges: ' + (n === 1 ? '1 in use' : n + ' in use') +
      ' · password: ' + (user.methods.password ? 'set' : 'none'));
    const toggle = el('button', 'btn btn-secondary btn-small', 'Badges…');
    toggle.type = 'button';
    toggle.setAttribute('aria-expanded', 'false');
    toggle.setAttribute('aria-controls', idp + 'panel');
    toggle.setAttribute('aria-label', 'Badges of ' + who);
    const panel = el('div', 'badge-admin-panel');
    panel.id = idp + 'panel';
    panel.hidden = true;
    box.append(line, toggle, panel);
    actions.append(box);

    const msg = el('p', 'item-meta');
    msg.setAttribute('role', 'status');
    const list = el('ul', 'items badge-admin-list');
    const out = el('div', 'badge-printout');
    out.hidden = true;

    const form = el('form', 'badge-admin-form');
    form.noValidate = true;
    const kindField = el('div', 'field');
    const kindLabel = el('label', '', 'Kind');
    kindLabel.htmlFor = idp + 'kind';
    const kind = el('select');
    kind.id = idp + 'kind';
    for (const k of ['insecure', 'secure']) {
      const o = el('option', '', kindName(k));
      o.value = k;
      kind.append(o);
    }
    kindField.append(kindLabel, kind);
    const expField = el('div', 'field');
    const expLabel = el('label', '', 'Valid until ');
    expLabel.htmlFor = idp + 'expires';
    expLabel.append(el('span', 'optional', '(optional)'));
    const expires = el('input');
    expires.type = 'date';
    expires.id = idp + 'expires';
    expField.append(expLabel, expires);
    const hint = el('p', 'item-meta');
    const issue = el('button', 'btn btn-primary btn-small', 'Issue badge');
    issue.type = 'submit';
    const formActions = el('div', 'form-actions');
    formActions.append(issue);
    form.append(kindField, expField, hint, formActions);
    panel.append(list, form, out, msg);

    let info = null;

    function say(text, isError) {
      msg.textContent = text;
      msg.classList.toggle('form-error', !!isError);
    }

    function renderHint() {
      const secure = kind.value === 'secure';
      expField.hidden = !secure;
      if (secure && info && !info.has_password) {
        hint.textContent = 'This user has no password: a secure badge is sealed under it, so they must set one first.';
      } else if (!secure && info && !info.insecure_scans) {
        hint.textContent = 'Insecure badge scans are off on this service: such a badge will not sign in until they are turned on.';
      } else {
        hint.textContent = secure
          ? 'Replaces username and password; stops working when the user changes their password.'
          : 'Says who someone is; a password or their phone is always asked for after it.';
      }
    }

    function render() {
      list.replaceChildren();
      const badges = (info && info.badges) || [];
      if (badges.length === 0) list.append(el('li', 'item item-empty', 'No badges.'));
      for (const b of badges) {
        const li = el('li', 'item');
        li.dataset.badgeId = b.id;
        const body = el('div', 'item-body');
        body.append(el('p', 'item-title', kindName(b.kind) + ' — ' + (statusWords[b.status] || b.status)));
        const meta = ['issued ' + day(b.created_at) + ' by ' + b.created_by, b.id];
        if (b.expires_at) meta.push('valid until ' + day(new Date(new Date(b.expires_at).getTime() - 1000)));
        if (b.revoked_at) meta.push('revoked ' + day(b.revoked_at) + ' by ' + b.revoked_by);
        body.append(el('p', 'item-meta', meta.join(' · ')));
        li.append(body);
        if (b.status !== 'revoked') {
          const rv = el('button', 'btn btn-danger btn-small', 'Revoke');
          rv.type = 'button';
          rv.setAttribute('aria-label', 'Revoke badge ' + b.id + ' of ' + who);
          rv.addEventListener('click', async function () {
            if (!window.confirm('Revoke this badge of ' + who + '? It will never sign anyone in again.')) return;
            rv.disabled = true;
            say('');
            try {
              await q.api('POST', '/admin/api/badge/badges/' + encodeURIComponent(b.id) + '/revoke');
              say('Badge ' + b.id + ' revoked.');
              await load();
            } catch (err) {
              rv.disabled = false;
              say(err.message, true);
            }
          });
          li.append(rv);
        }
        list.append(li);
      }
      renderHint();
    }

    async function load() {
      try {
        info = (await q.api('GET', api)).data;
      } catch (err) {
        say(err.message, true);
        return;
      }
      render();
    }

    toggle.addEventListener('click', function () {
      const open = panel.hidden;
      panel.hidden = !open;
      toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
      if (open) load();
    });
    kind.addEventListener('change', renderHint);

    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      say('');
      const body = { kind: kind.value };
      if (kind.value === 'secure' && expires.value) body.expires = expires.value;
      issue.disabled = true;
      try {
        const d = (await q.api('POST', api, body)).data;
        for (const a of out.querySelectorAll('a[href^="blob:"]')) URL.revokeObjectURL(a.href);
        const img = el('img', 'badge-preview');
        img.alt = 'QR code of the new badge of ' + who;
        img.width = 140;
        img.height = 140;
        img.src = 'data:image/png;base64,' + d.png;
        const qr = el('div', 'badge-qr');
        qr.append(img);
        const pdf = el('a', 'btn btn-primary btn-small', 'Download PDF');
        pdf.href = blobURL(d.pdf, 'application/pdf');
        pdf.download = 'badge-' + d.badge.id + '.pdf';
        const png = el('a', 'btn btn-secondary btn-small', 'Download PNG');
        png.href = blobURL(d.png, 'image/png');
        png.download = 'badge-' + d.badge.id + '.png';
        const text = el('div', 'badge-printout-text');
        const links = el('div', 'form-actions');
        links.append(pdf, png);
        text.append(el('p', 'item-title', kindName(d.badge.kind) + ' ' + d.badge.id + ' issued'),
          el('p', 'item-meta', 'Download it now: the files are not kept. Hand it over like a key.'), links);
        out.replaceChildren(qr, text);
        out.hidden = false;
        say('Badge issued for ' + who + '.');
        await load();
        line.textContent = 'Badges: ' + ((info && info.badges) || []).filter(function (b) { return b.status === 'active'; }).length +
          ' in use · password: ' + (info && info.has_password ? 'set' : 'none');
      } catch (err) {
        say(err.message, true);
      } finally {
        issue.disabled = false;
      }
    });
  });
})();
