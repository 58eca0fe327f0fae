// account-recovery: the "Recovery codes" section of the account page
// (docs/recovery.md). Ten one-time codes let a person whose only phone is
// lost link a new phone. They are shown once, right after they are made,
// with a print-friendly sheet; the server keeps only their hashes. While
// the account has none, a banner at the top of the page offers them (the
// first visit after sign-up included). Making a new set voids the old one.
'use strict';

(function () {
  const q = window.qrauth;
  const el = q.el;

  q.accountSection({
    name: 'recovery',
    title: 'Recovery codes',
    path: '/api/recovery',
    enabled: function (d) { return !!d && typeof d.remaining === 'number'; },
    build: build,
  });

  function build(ctx) {
    const section = ctx.section;
    const head = ctx.head;
    const user = ctx.user || {};
    let status = ctx.data;

    const make = el('button', 'btn btn-secondary btn-small');
    make.type = 'button';
    make.id = 'recovery-generate';
    head.append(make);

    const note = el('p', 'panel-note',
      'If you lose your phone, one of these codes links a new phone to your account. ' +
      'Each works once. Keep them on paper, away from your phone.');
    const details = el('dl', 'details');
    const row = el('div');
    const state = el('dd');
    state.id = 'recovery-state';
    row.append(el('dt', '', 'Status'), state);
    details.append(row);

    // The sheet: the codes of this visit, and what printing shows.
    const sheet = el('div', 'recovery-sheet');
    sheet.id = 'recovery-sheet';
    sheet.hidden = true;
    const sheetTitle = el('h3', '', 'Your recovery codes');
    sheetTitle.id = 'recovery-sheet-title';
    sheetTitle.tabIndex = -1;
    const sheetFor = el('p', 'recovery-sheet-for');
    const codes = el('ol', 'recovery-codes');
    codes.id = 'recovery-codes';
    const warn = el('p', 'panel-note',
      'They are shown only now. Print them or write them down, then close this. ' +
      'On a new phone, open the qrauth app and choose “Recover my account”, or run: qrauth-app recover CODE.');
    const actions = el('div', 'form-actions recovery-actions');
    const print = el('button', 'btn btn-primary', 'Print');
    print.type = 'button';
    print.id = 'recovery-print';
    const done = el('button', 'btn btn-secondary', 'I have saved them');
    done.type = 'button';
    done.id = 'recovery-done';
    actions.append(print, done);
    sheet.append(sheetTitle, sheetFor, codes, warn, actions);

    const error = el('p', 'form-error');
    error.id = 'recovery-error';
    error.setAttribute('role', 'alert');
    error.hidden = true;
    const live = el('p', 'visually-hidden');
    live.setAttribute('role', 'status');
    live.setAttribute('aria-live', 'polite');
    section.append(note, details, sheet, error, live);

    // The banner for an account without codes, at the top of the page.
    const banner = el('div', 'banner banner-info');
    banner.id = 'recovery-banner';
    banner.append(el('p', '', 'Save your recovery codes: they get you back in if you lose your phone.'));
    const bannerBtn = el('button', 'btn btn-primary btn-small', 'Make recovery codes');
    bannerBtn.type = 'button';
    bannerBtn.id = 'recovery-banner-generate';
    banner.append(bannerBtn);
    const accountHead = document.querySelector('.account-head');
    if (accountHead) accountHead.after(banner);

    function render() {
      const n = status.remaining;
      if (status.locked) {
        state.textContent = 'Locked after too many wrong codes. Ask the helpdesk, or make a new set.';
      } else if (n > 0) {
        state.textContent = n + ' of 10 codes left (made ' + q.formatDate(status.generated_at) + ')';
      } else {
        state.textContent = status.generated_at ? 'All codes used: make a new set' : 'No recovery codes yet';
      }
      state.classList.toggle('missing', !(n > 0));
      make.textContent = n > 0 ? 'Make new codes' : 'Make codes';
      banner.hidden = n > 0 || !sheet.hidden;
    }

    async function generate() {
      if (status.remaining > 0 && !window.confirm('Make new recovery codes? The codes you have now stop working.')) return;
      error.hidden = true;
      make.disabled = true;
      bannerBtn.disabled = true;
      try {
        const res = await q.api('POST', '/api/recovery/codes');
        status = res.data.status;
        codes.replaceChildren();
        for (const c of res.data.codes) codes.append(el('li', 'recovery-code', c));
        sheetFor.textContent = 'For ' + (user.name || user.id || 'your account') + ' at ' + location.host +
          ', made ' + q.formatDate(new Date().toISOString()) + '. Each code works once.';
        sheet.hidden = false;
        render();
        live.textContent = 'Ten new recovery codes made. Your old codes no longer work.';
        sheetTitle.focus();
      } catch (err) {
        if (err.status === 401) {
          location.replace('/');
          return;
        }
        error.textContent = err.message;
        error.hidden = false;
      } finally {
        make.disabled = false;
        bannerBtn.disabled = false;
      }
    }

    make.addEventListener('click', generate);
    bannerBtn.addEventListener('click', generate);
    // Printing shows the sheet alone (app.css, @media print).
    print.addEventListener('click', function () {
      document.body.classList.add('print-recovery');
      window.print();
    });
    window.addEventListener('afterprint', function () { document.body.classList.remove('print-recovery'); });
    done.addEventListener('click', function () {
      // The codes leave the page: they were to be shown once.
      codes.replaceChildren();
      sheet.hidden = true;
      render();
      make.focus();
    });

    render();
  }
})();
