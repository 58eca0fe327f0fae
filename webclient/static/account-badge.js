// account-badge: the "Badges" section of the account page: the badges
// printed for this account, revoking one, and printing one's own when the
// service allows it (GET /api/badges says which kinds in "self_issue").
// Loaded only when the service uses badges (data-feature="badge").
'use strict';

(function () {
  const q = window.qrauth;
  const el = q.el;

  const statusWords = {
    active: 'In use',
    revoked: 'Revoked',
    expired: 'Expired',
    password_changed: 'No longer works: password changed',
  };

  function kindName(kind) {
    return kind === 'secure' ? 'Secure badge' : 'Insecure badge';
  }

  function day(s) {
    if (!s) return '';
    const d = new Date(s);
    return isNaN(d.getTime()) ? '' : d.toLocaleDateString();
  }

  // badgeRow builds the list item of one badge; onRevoke(badge, button) is
  // called from its Revoke button (none for revoked badges).
  function badgeRow(b, onRevoke) {
    const li = el('li', 'item');
    li.dataset.badgeId = b.id;
    li.dataset.status = b.status;
    const icon = el('span', 'item-icon item-icon-badge');
    icon.setAttribute('aria-hidden', 'true');
    const body = el('div', 'item-body');
    const title = el('p', 'item-title', kindName(b.kind));
    const pill = el('span', 'badge ' + (b.status === 'active' ? '' : 'badge-muted'), statusWords[b.status] || b.status);
    title.append(' ', pill);
    const meta = ['Issued ' + day(b.created_at) + (b.created_by === 'self' ? ' by you' : ' by ' + b.created_by)];
    if (b.kind === 'insecure') meta.push('needs a second factor');
    if (b.expires_at) meta.push('valid until ' + day(new Date(new Date(b.expires_at).getTime() - 1000)));
    if (b.revoked_at) meta.push('revoked ' + day(b.revoked_at) + (b.revoked_by ? ' by ' + b.revoked_by : ''));
    meta.push(b.id);
    body.append(title, el('p', 'item-meta', meta.join(' · ')));
    li.append(icon, body);
    if (b.status !== 'revoked' && onRevoke) {
      const btn = el('button', 'btn btn-danger btn-small', 'Revoke');
      btn.type = 'button';
      btn.setAttribute('aria-label', 'Revoke ' + kindName(b.kind).toLowerCase() + ' ' + b.id);
      btn.addEventListener('click', function () { onRevoke(b, btn); });
      li.append(btn);
    }
    return li;
  }

  function blobURL(base64, type) {
    const bin = atob(base64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return URL.createObjectURL(new Blob([bytes], { type: type }));
  }

  // printout fills box with the issued badge: a preview and download
  // links for the PDF (card to print) and the PNG (the code alone).
  function printout(box, issued) {
    for (const a of box.querySelectorAll('a[href^="blob:"]')) URL.revokeObjectURL(a.href);
    const img = el('img', 'badge-preview');
    img.alt = 'QR code of the new badge';
    img.width = 160;
    img.height = 160;
    img.src = 'data:image/png;base64,' + issued.png;
    const pdf = el('a', 'btn btn-primary btn-small', 'Download the badge (PDF)');
    pdf.href = blobURL(issued.pdf, 'application/pdf');
    pdf.download = 'badge-' + issued.badge.id + '.pdf';
    const png = el('a', 'btn btn-secondary btn-small', 'Download the code (PNG)');
    png.href = blobURL(issued.png, 'image/png');
    png.download = 'badge-' + issued.badge.id + '.png';
    const text = el('div', 'badge-printout-text');
    text.append(el('p', 'item-title', kindName(issued.badge.kind) + ' ready'),
      el('p', 'item-meta', 'Print the PDF on card or paper. The files are not kept: download them now. ' +
        'Treat the badge like a key' + (issued.badge.kind === 'secure' ? ': it signs you in on its own.' : '.')));
    const links = el('div', 'form-actions');
    links.append(pdf, png);
    text.append(links);
    const qr = el('div', 'badge-qr');
    qr.append(img);
    box.replaceChildren(qr, text);
    box.hidden = false;
  }

  q.accountSection({ name: 'badges', title: 'Badges', path: '/api/badges', build: build });

  function build(ctx) {
    const section = ctx.section;
    let data = ctx.data;
    const note = el('p', 'panel-note',
      'A printed badge signs you in when you show it to a computer\'s camera, without your phone. ' +
      'Revoke a badge you have lost.');
    const error = el('p', 'form-error');
    error.setAttribute('role', 'alert');
    error.hidden = true;
    const list = el('ul', 'items');
    list.id = 'badge-list';
    const status = el('p', 'visually-hidden');
    status.setAttribute('role', 'status');
    status.setAttribute('aria-live', 'polite');
    section.append(note, error, list);

    const kinds = data.self_issue || [];
    let form = null;
    let kindSelect = null;
    let expires = null;
    let current = null;
    let hint = null;
    const result = el('div', 'badge-printout');
    result.id = 'badge-printout';
    result.hidden = true;

    function failed(err) {
      if (err.status === 401 && !(err.data && err.data.reason === 'wrong_password')) {
        location.replace('/');
        return;
      }
      error.textContent = err.message;
      error.hidden = false;
    }

    async function revoke(b, btn) {
      if (!window.confirm('Revoke this ' + kindName(b.kind).toLowerCase() + '? It will never sign anyone in again.')) return;
      btn.disabled = true;
      error.hidden = true;
      try {
        await q.api('POST', '/api/badges/' + encodeURIComponent(b.id) + '/revoke');
        status.textContent = 'Badge revoked.';
        await load();
      } catch (err) {
        btn.disabled = false;
        failed(err);
      }
    }

    function render() {
      list.replaceChildren();
      if (!data.badges || data.badges.length === 0) {
        list.append(el('li', 'item item-empty', 'No badges yet.'));
      } else {
        for (const b of data.badges) list.append(badgeRow(b, revoke));
      }
      if (form) {
        const secure = kindSelect.value === 'secure';
        expires.wrap.hidden = !secure;
        current.wrap.hidden = !secure || !data.has_password;
        hint.textContent = secure && !data.has_password
          ? 'A secure badge is sealed under your password: set a password above first.'
          : secure ? 'Replaces username and password; stops working when you change your password.'
            : 'Only says who you are: a password or your phone is asked for after it.';
      }
    }

    async function load() {
      try {
        data = (await q.api('GET', '/api/badges')).data || data;
      } catch (err) {
        failed(err);
        return;
      }
      render();
    }

    if (kinds.length > 0) {
      form = el('form', 'profile-form badge-form');
      form.id = 'badge-print-form';
      form.noValidate = true;
      const h = el('h3', '', 'Print a badge');
      const kindField = el('div', 'field');
      const kindLabel = el('label', '', 'Kind');
      kindLabel.htmlFor = 'badge-kind';
      kindSelect = el('select');
      kindSelect.id = 'badge-kind';
      for (const k of kinds) {
        const o = el('option', '', kindName(k));
        o.value = k;
        kindSelect.append(o);
      }
      kindField.append(kindLabel, kindSelect);
      hint = el('p', 'form-note password-rules');
      expires = { wrap: el('div', 'field') };
      const expLabel = el('label', '', 'Valid until ');
      expLabel.htmlFor = 'badge-expires';
      expLabel.append(el('span', 'optional', '(optional)'));
      expires.input = el('input');
      expires.input.type = 'date';
      expires.input.id = 'badge-expires';
      expires.wrap.append(expLabel, expires.input);
      current = { wrap: el('div', 'field') };
      const curLabel = el('label', '', 'Your password');
      curLabel.htmlFor = 'badge-current-password';
      current.input = el('input');
      current.input.type = 'password';
      current.input.id = 'badge-current-password';
      current.input.autocomplete = 'current-password';
      current.wrap.append(curLabel, current.input);
      const submit = el('button', 'btn btn-primary', 'Print badge');
      submit.type = 'submit';
      submit.id = 'badge-print';
      const actions = el('div', 'form-actions');
      actions.append(submit);
      form.append(h, kindField, hint, expires.wrap, current.wrap, actions);
      kindSelect.addEventListener('change', render);

      form.addEventListener('submit', async function (ev) {
        ev.preventDefault();
        error.hidden = true;
        const body = { kind: kindSelect.value };
        if (body.kind === 'secure') {
          if (!data.has_password) {
            error.textContent = 'Set a password first: a secure badge is sealed under it.';
            error.hidden = false;
            return;
          }
          if (!current.input.value) {
            error.textContent = 'Enter your password to print a secure badge.';
            error.hidden = false;
            current.input.focus();
            return;
          }
          body.current_password = current.input.value;
          if (expires.input.value) body.expires = expires.input.value;
        }
        submit.disabled = true;
        try {
          const res = await q.api('POST', '/api/badges', body);
          current.input.value = '';
          printout(result, res.data);
          status.textContent = 'Badge ready: download it now.';
          await load();
        } catch (err) {
          failed(err);
        } finally {
          submit.disabled = false;
        }
      });
      section.append(form, result);
    } else {
      section.append(el('p', 'panel-note badge-self-note', 'To get a badge, ask your helpdesk to print one for you.'));
    }
    section.append(status);
    document.addEventListener('qrauth:password-changed', load);
    render();
  }
})();
