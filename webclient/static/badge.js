// qrauth badge page: reads a printed badge's QR code with the camera (or
// from an uploaded photo) and signs in with it; after an insecure badge it
// asks for the second factor (password, or approval on the holder's phone).
//
// <main id="badge" data-state="loading|off|start|camera|nocamera|checking|
// second|done|error">; on error, data-error holds the server's reason.
//
// Frames: every ~300 ms the current video frame is drawn into a canvas,
// turned grey, and sent as a JPEG (or, when that is too big, a black and
// white PNG) under the server's 16 KiB body limit to POST /api/badge/frame. The server reads the code (so this page carries
// no QR library) and answers {"found": false} or the sign-in's next step.
'use strict';

(function () {
  const q = window.qrauth;
  const byId = q.byId;

  const root = byId('badge');
  const statusLine = byId('badge-status');
  const lead = byId('badge-lead');
  const video = byId('badge-video');
  const hint = byId('badge-hint');
  const upload = byId('badge-upload');
  const fileInput = byId('badge-file');
  const uploadError = byId('badge-upload-error');
  const form = byId('badge-password-form');
  const password = byId('badge-password');
  const passwordError = byId('badge-password-error');
  const passwordSubmit = byId('badge-password-submit');
  const noFactor = byId('badge-no-factor');
  const phoneBox = byId('badge-phone');
  const phoneStart = byId('badge-phone-start');
  const phoneBody = byId('badge-phone-body');
  const phoneQR = byId('badge-phone-qr');
  const phoneStatus = byId('badge-phone-status');

  const FRAME_MS = 300;
  const MAX_BODY = 15 * 1024; // the server takes 16 KiB
  const LEAD = 'Hold your printed qrauth badge up to the camera.';

  let config = {};
  let stream = null;
  let timer = 0;
  let scanning = false; // the camera loop runs
  let inFlight = false; // a frame of the loop is on its way
  let room = null;

  const words = {
    loading: 'Loading…',
    off: 'Badges are not used on this service.',
    start: 'Ready to start the camera.',
    camera: 'Camera on: show your badge.',
    nocamera: 'No camera available.',
    checking: 'Badge found, checking…',
    second: 'One more step: confirm that it is you.',
    done: 'Signed in.',
  };

  function show(state, text) {
    if (state !== 'error') root.removeAttribute('data-error');
    q.showState(root, state);
    upload.hidden = !(state === 'start' || state === 'camera' || state === 'nocamera');
    q.say(statusLine, text || words[state] || '');
  }

  const titles = {
    badge_revoked: 'This badge has been revoked',
    badge_password_changed: 'This badge no longer works',
    badge_expired: 'This badge has expired',
    badge_invalid: 'This badge is not valid here',
    badge_insecure_disabled: 'This kind of badge is not accepted here',
    badge_insecure_not_method: 'This kind of badge is not accepted here',
    badge_needs_first_step: 'Sign in with your phone first',
    badge_wrong_user: 'This is someone else\'s badge',
    no_pending_sign_in: 'Please start again',
  };

  function fail(err) {
    stopCamera();
    stopRoom();
    const reason = (err && err.reason) || 'error';
    byId('badge-error-title').textContent = titles[reason] || 'This badge was not accepted';
    byId('badge-error-message').textContent = (err && err.message) || 'Something went wrong. Please try again.';
    show('error', 'Not signed in: ' + ((err && err.message) || 'the badge was not accepted.'));
    root.dataset.error = reason;
  }

  // Camera

  function noCamera(title, text) {
    stopCamera();
    byId('badge-nocamera-title').textContent = title;
    byId('badge-nocamera-text').textContent = text;
    show('nocamera', title + '. ' + text);
  }

  async function startCamera() {
    uploadError.hidden = true;
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      noCamera('The camera cannot be used here',
        'Browsers allow the camera only on secure (https) pages. Upload a photo of your badge instead.');
      return;
    }
    hint.textContent = 'Starting the camera…';
    show('camera');
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { width: { ideal: 1280 }, height: { ideal: 720 } },
      });
    } catch (err) {
      const name = err && err.name;
      if (name === 'NotAllowedError' || name === 'SecurityError') {
        noCamera('Camera access was not allowed',
          'Allow the camera for this site in your browser\'s settings and try again, or upload a photo of your badge.');
      } else if (name === 'NotFoundError' || name === 'OverconstrainedError') {
        noCamera('No camera found', 'This device has no camera we can use. Upload a photo of your badge instead.');
      } else if (name === 'NotReadableError' || name === 'AbortError') {
        noCamera('The camera is busy', 'Another program is using the camera. Close it and try again, or upload a photo of your badge.');
      } else {
        noCamera('The camera could not be started', 'Try again, or upload a photo of your badge.');
      }
      return;
    }
    if (root.dataset.state !== 'camera') {
      // The person moved on while the browser asked.
      stopCamera();
      return;
    }
    const track = stream.getVideoTracks()[0];
    const settings = track && track.getSettings ? track.getSettings() : {};
    // A camera facing the person shows a mirror image, as people expect;
    // the frames sent are not mirrored.
    video.classList.toggle('mirrored', settings.facingMode !== 'environment');
    video.srcObject = stream;
    try {
      await video.play();
    } catch (e) {
      // Muted video may always play; if not, frames still arrive.
    }
    hint.textContent = 'Looking for a badge… Hold it still, about a hand\'s width from the camera.';
    scanning = true;
    schedule(FRAME_MS);
  }

  function stopCamera() {
    scanning = false;
    clearTimeout(timer);
    timer = 0;
    if (stream) {
      for (const t of stream.getTracks()) t.stop();
      stream = null;
    }
    video.srcObject = null;
  }

  function schedule(ms) {
    clearTimeout(timer);
    if (scanning) timer = setTimeout(tick, ms);
  }

  async function tick() {
    if (!scanning || inFlight) return;
    if (video.readyState < 2 || !video.videoWidth) {
      schedule(FRAME_MS);
      return;
    }
    inFlight = true;
    let res = null;
    try {
      const blob = await encode(video, video.videoWidth, video.videoHeight, 640);
      if (blob && scanning) res = await send(blob);
    } finally {
      inFlight = false;
    }
    if (!scanning) return;
    if (!res) {
      schedule(FRAME_MS);
      return;
    }
    handleResult(res, false);
  }

  // Frames and photos

  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });

  // encode draws source (sw×sh) at most maxSide wide or high, grey, and
  // returns a picture under MAX_BODY: a JPEG when one fits, else the same
  // picture reduced to black and white as a PNG (a QR code and text
  // compress far better so), shrinking until one fits.
  async function encode(source, sw, sh, maxSide) {
    for (const f of [1, 0.75, 0.5]) {
      const scale = Math.min(1, (maxSide * f) / Math.max(sw, sh));
      const w = Math.max(1, Math.round(sw * scale));
      const h = Math.max(1, Math.round(sh * scale));
      canvas.width = w;
      canvas.height = h;
      ctx.drawImage(source, 0, 0, w, h);
      const img = ctx.getImageData(0, 0, w, h);
      const d = img.data;
      const grey = new Uint8Array(w * h);
      for (let i = 0, p = 0; i < d.length; i += 4, p++) {
        const y = (d[i] * 77 + d[i + 1] * 150 + d[i + 2] * 29) >> 8;
        grey[p] = y;
        d[i] = y;
        d[i + 1] = y;
        d[i + 2] = y;
      }
      ctx.putImageData(img, 0, 0);
      let blob = await toBlob('image/jpeg', 0.7);
      if (blob && blob.size <= MAX_BODY) return blob;
      binarize(grey, w, h, d);
      ctx.putImageData(img, 0, 0);
      blob = await toBlob('image/png');
      if (blob && blob.size <= MAX_BODY) return blob;
    }
    return null;
  }

  function toBlob(type, quality) {
    return new Promise(function (resolve) { canvas.toBlob(resolve, type, quality); });
  }

  // binarize writes into rgba (of w×h) black where grey is clearly darker
  // than its neighbourhood and white elsewhere: a local threshold, so
  // uneven light does not swallow the code. The neighbourhood is wide (an
  // eighth of the picture) so that it always spans several modules: a
  // narrow one would hollow out the solid centres of the finder patterns.
  function binarize(grey, w, h, rgba) {
    const r = Math.max(8, Math.round(Math.min(w, h) / 8));
    const iw = w + 1;
    const sum = new Float64Array(iw * (h + 1));
    for (let y = 0; y < h; y++) {
      let row = 0;
      for (let x = 0; x < w; x++) {
        row += grey[y * w + x];
        sum[(y + 1) * iw + x + 1] = sum[y * iw + x + 1] + row;
      }
    }
    for (let y = 0; y < h; y++) {
      const y0 = Math.max(0, y - r);
      const y1 = Math.min(h, y + r + 1);
      for (let x = 0; x < w; x++) {
        const x0 = Math.max(0, x - r);
        const x1 = Math.min(w, x + r + 1);
        const total = sum[y1 * iw + x1] - sum[y0 * iw + x1] - sum[y1 * iw + x0] + sum[y0 * iw + x0];
        const n = (x1 - x0) * (y1 - y0);
        const v = grey[y * w + x] * n < total * 0.92 ? 0 : 255;
        const i = (y * w + x) * 4;
        rgba[i] = v;
        rgba[i + 1] = v;
        rgba[i + 2] = v;
        rgba[i + 3] = 255;
      }
    }
  }

  // send posts a picture and resolves to {status, data}; status 0 when the
  // server cannot be reached.
  async function send(blob) {
    try {
      const res = await fetch('/api/badge/frame', {
        method: 'POST',
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { 'Content-Type': blob.type || 'image/jpeg', Accept: 'application/json' },
        body: blob,
      });
      let data = null;
      try {
        data = await res.json();
      } catch (e) {
        data = null;
      }
      return { status: res.status, data: data };
    } catch (e) {
      return { status: 0, data: null };
    }
  }

  function uploadFailed(text) {
    uploadError.textContent = text;
    uploadError.hidden = false;
  }

  // handleResult acts on the answer to a frame (fromUpload false) or a
  // photo (true).
  function handleResult(res, fromUpload) {
    const d = res.data || {};
    if (res.status === 200 && d.found === false) {
      if (fromUpload) {
        uploadFailed('No badge code was found in this photo. Take it closer, with the whole code sharp and in view.');
      } else {
        schedule(FRAME_MS);
      }
      return;
    }
    if (res.status === 200) {
      afterStep(d);
      return;
    }
    if (res.status === 0 || res.status === 429 || res.status >= 500) {
      const text = res.status === 429 ? q.TOO_MANY + '.' : 'Cannot reach the service right now.';
      if (fromUpload) {
        uploadFailed(text + ' Try again in a moment.');
      } else {
        hint.textContent = text + ' Trying again…';
        schedule(2000);
      }
      return;
    }
    if (d.reason === 'not_a_badge' || d.reason === 'unreadable_image' || d.reason === 'no_qr_code') {
      const text = (d.message || 'That is not a badge.') + ' Show your qrauth badge.';
      if (fromUpload) {
        uploadFailed(text);
      } else {
        hint.textContent = text;
        schedule(1500);
      }
      return;
    }
    // A badge was read and refused: say why, and stop.
    fail(d);
  }

  fileInput.addEventListener('change', async function () {
    const file = fileInput.files && fileInput.files[0];
    fileInput.value = '';
    if (!file) return;
    uploadError.hidden = true;
    if (!window.createImageBitmap) {
      uploadFailed('This browser cannot read photos here.');
      return;
    }
    let bmp;
    try {
      bmp = await createImageBitmap(file);
    } catch (e) {
      uploadFailed('That file is not a picture this browser can read.');
      return;
    }
    statusLine.textContent = 'Reading the photo…';
    const blob = await encode(bmp, bmp.width, bmp.height, 1280);
    if (bmp.close) bmp.close();
    if (!blob) {
      uploadFailed('The photo could not be made small enough to send. Try a photo of just the badge.');
      return;
    }
    handleResult(await send(blob), true);
  });

  // Steps

  // afterStep follows the server's answer to a passed step.
  function afterStep(d) {
    const next = q.safeNext(d && d.next);
    stopCamera();
    if (next === '/badge') {
      loadStatus();
      return;
    }
    stopRoom();
    show('done');
    location.assign(next);
  }

  async function loadStatus() {
    let res;
    try {
      res = await q.api('GET', '/api/badge/status');
    } catch (err) {
      fail({ reason: 'status', message: err.message });
      return;
    }
    config = res.data || {};
    if (!config.enabled) {
      show('off');
      return;
    }
    const p = config.pending;
    if (p && p.step === 'second_factor') {
      showSecond(p);
      return;
    }
    if (p && p.step === 'badge') {
      lead.textContent = (p.name ? 'Signing in as ' + p.name + '. ' : '') + 'Show your badge to the camera to finish.';
    } else {
      lead.textContent = LEAD;
    }
    show('start');
  }

  function allows(f) {
    return Array.isArray(config.second_factors) && config.second_factors.indexOf(f) >= 0;
  }

  function showSecond(p) {
    stopCamera();
    stopRoom();
    lead.textContent = p.name ? 'Signing in as ' + p.name + '.' : 'Badge accepted.';
    byId('badge-second-who').textContent = 'Your badge says who you are. Now confirm that it is you.';
    const pw = allows('password') && p.has_password;
    const phone = allows('phone');
    form.hidden = !pw;
    form.reset();
    passwordError.hidden = true;
    password.removeAttribute('aria-invalid');
    passwordSubmit.disabled = false;
    phoneBox.hidden = !phone;
    phoneStart.hidden = false;
    phoneBody.hidden = true;
    noFactor.hidden = pw || phone;
    noFactor.textContent = 'This account has no password, and this service accepts no other way to confirm it is you. Ask your helpdesk.';
    show('second');
    if (pw) {
      password.focus();
    } else if (phone) {
      startPhone();
    }
  }

  form.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    passwordError.hidden = true;
    password.removeAttribute('aria-invalid');
    if (!password.value) {
      passwordError.textContent = 'Enter your password.';
      passwordError.hidden = false;
      password.focus();
      return;
    }
    passwordSubmit.disabled = true;
    try {
      const res = await q.api('POST', '/api/signin/password', { password: password.value });
      afterStep(res.data || {});
    } catch (err) {
      passwordSubmit.disabled = false;
      const reason = err.data && err.data.reason;
      if (reason === 'no_pending_sign_in') {
        fail({ reason: reason, message: 'This sign-in took too long or had too many attempts. Show your badge again.' });
        return;
      }
      password.value = '';
      password.setAttribute('aria-invalid', 'true');
      passwordError.textContent = err.message;
      passwordError.hidden = false;
      password.focus();
    }
  });

  // Phone approval: an ordinary login room; its ticket goes to
  // /api/badge/phone, which accepts it only from the badge holder's phone.

  function stopRoom() {
    if (room) room.stop();
    room = null;
  }

  function startPhone() {
    phoneStart.hidden = true;
    phoneBody.hidden = false;
    stopRoom();
    room = new q.Room('/ws/browser', {
      onState: function (state, msg) {
        phoneBox.dataset.state = state;
        switch (state) {
          case 'waiting':
            if (typeof msg.qr === 'string' && msg.qr.startsWith('data:image/')) phoneQR.src = msg.qr;
            phoneStatus.textContent = 'Waiting for your phone…';
            break;
          case 'scanned':
            phoneStatus.textContent = 'Scanned — approve on your phone.';
            break;
          case 'approved':
            phoneStatus.textContent = 'Approved — signing you in…';
            finishPhone(msg.ticket);
            break;
          case 'signup':
            stopRoom();
            phoneStatus.textContent = 'That phone has no qrauth account. Use the badge holder\'s own phone.';
            phoneStart.hidden = false;
            break;
          case 'denied':
          case 'expired':
            phoneStatus.textContent = state === 'denied' ? 'Declined on the phone.' : 'The code has expired.';
            phoneStart.hidden = false;
            break;
          case 'error':
            phoneStatus.textContent = msg.message || 'Something went wrong.';
            phoneStart.hidden = false;
            break;
          default:
            phoneStatus.textContent = 'Getting a code…';
        }
      },
    });
    room.start();
  }

  async function finishPhone(ticket) {
    try {
      const res = await q.api('POST', '/api/badge/phone', { ticket: ticket });
      afterStep(res.data || {});
    } catch (err) {
      const reason = err.data && err.data.reason;
      if (reason === 'no_pending_sign_in') {
        fail({ reason: reason, message: 'This sign-in took too long. Show your badge again.' });
        return;
      }
      phoneStatus.textContent = err.message;
      phoneStart.hidden = false;
    }
  }

  // Wiring

  byId('badge-start').addEventListener('click', startCamera);
  byId('badge-retry-camera').addEventListener('click', startCamera);
  byId('badge-stop').addEventListener('click', function () {
    stopCamera();
    show('start');
  });
  byId('badge-again').addEventListener('click', function () { loadStatus(); });
  byId('badge-restart').addEventListener('click', function () {
    stopRoom();
    lead.textContent = LEAD;
    show('start');
  });
  phoneStart.addEventListener('click', startPhone);

  // A camera left on in a background tab is a privacy problem.
  document.addEventListener('visibilitychange', function () {
    if (document.hidden && scanning) {
      stopCamera();
      show('start');
    }
  });

  // Someone who is already signed in never gets here: the server sends
  // them on to /account.
  function init() {
    loadStatus();
  }

  init();
})();
