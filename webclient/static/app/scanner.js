// The camera scanner: the back camera into a <video>, a framing box drawn
// by CSS over it, the torch where the camera has one, and a decode loop that
// stops at the first QR code.

import { decode } from './qrdecode.js';

export class Scanner {
  constructor(video) {
    this.video = video;
    this.stream = null;
    this.running = false;
    this.torchOn = false;
  }

  // start opens the camera; it rejects with a sentence for people.
  async start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error('This browser gives web pages no camera. Open the code with the phone’s camera app instead.');
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } },
      });
    } catch (e) {
      if (e && e.name === 'NotAllowedError') {
        throw new Error('The camera is not allowed. Allow it for this site in the browser’s settings, or open the code with the phone’s camera app.');
      }
      throw new Error('The camera could not be started (' + (e && e.name ? e.name : 'error') + ').');
    }
    this.video.srcObject = this.stream;
    this.video.setAttribute('playsinline', '');
    this.video.muted = true;
    await this.video.play();
    this.running = true;
  }

  // torchAvailable says whether the camera can light.
  torchAvailable() {
    const track = this.stream && this.stream.getVideoTracks()[0];
    if (!track || !track.getCapabilities) return false;
    const caps = track.getCapabilities();
    return !!(caps && caps.torch);
  }

  async toggleTorch() {
    const track = this.stream && this.stream.getVideoTracks()[0];
    if (!track) return false;
    this.torchOn = !this.torchOn;
    try {
      await track.applyConstraints({ advanced: [{ torch: this.torchOn }] });
    } catch (_) {
      this.torchOn = false;
    }
    return this.torchOn;
  }

  // next resolves with the text of the next QR code seen; onText may refuse
  // a text (return false) to keep scanning.
  next(onText) {
    return new Promise((resolve, reject) => {
      const tick = async () => {
        if (!this.running) return reject(new Error('stopped'));
        if (this.video.readyState >= 2) {
          try {
            const text = await decode(this.video);
            if (text && (!onText || onText(text) !== false)) return resolve(text);
          } catch (e) {
            return reject(e);
          }
        }
        // One frame at a time: the decoder takes a few ms, the camera gives
        // a frame every 33 ms, so there is no point in queueing.
        if (this.video.requestVideoFrameCallback) this.video.requestVideoFrameCallback(() => tick());
        else setTimeout(tick, 100);
      };
      tick();
    });
  }

  stop() {
    this.running = false;
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.video.srcObject = null;
  }
}
