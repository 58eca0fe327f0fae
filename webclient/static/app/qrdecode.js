// QR decoding for the phone web app: the browser's own BarcodeDetector
// where it exists and reads QR codes, the vendored zxing-wasm ponyfill
// otherwise (see static/vendor/README.md for the choice and measurements).
// The WebAssembly is always loaded from our own origin: the ponyfill's
// default would fetch it from a CDN, which the CSP forbids and which would
// tell a third party that someone is signing in.

export const WASM_PATH = '/static/vendor/zxing-wasm/zxing_reader.wasm';
const PONYFILL_PATH = '/static/vendor/barcode-detector/ponyfill.js';

let detectorPromise = null;

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error('could not load ' + src));
    document.head.appendChild(s);
  });
}

async function nativeDetector() {
  if (typeof window.BarcodeDetector !== 'function') return null;
  try {
    const formats = await window.BarcodeDetector.getSupportedFormats();
    if (!formats.includes('qr_code')) return null;
    return { detector: new window.BarcodeDetector({ formats: ['qr_code'] }), kind: 'native' };
  } catch (_) {
    return null;
  }
}

async function vendoredDetector() {
  if (!window.BarcodeDetectionAPI) await loadScript(PONYFILL_PATH);
  const api = window.BarcodeDetectionAPI;
  api.prepareZXingModule({
    overrides: {
      // Every file the module asks for comes from us, never a CDN.
      locateFile: (path, prefix) => (path.endsWith('.wasm') ? WASM_PATH : prefix + path),
    },
    fireImmediately: true,
  });
  return { detector: new api.BarcodeDetector({ formats: ['qr_code'] }), kind: 'zxing-wasm' };
}

// detector returns {detector, kind}; kind is "native" or "zxing-wasm".
// opts.forceVendored skips the native one (tests, and a native detector
// that turns out not to work).
export function detector(opts = {}) {
  if (opts.forceVendored) return vendoredDetector();
  if (!detectorPromise) {
    detectorPromise = nativeDetector().then((d) => d || vendoredDetector());
  }
  return detectorPromise;
}

// decode returns the text of the first QR code in source (a video, image,
// canvas or ImageData), or null when there is none.
export async function decode(source, opts) {
  const { detector: d } = await detector(opts);
  const codes = await d.detect(source);
  for (const c of codes) {
    if (c.format === 'qr_code' || !c.format) return c.rawValue;
  }
  return null;
}
