// Countries for the phone number picker: ISO 3166 code, name, calling code.
// The app builds E.164 from the calling code and the national number
// without its trunk prefix (docs/protocol.md §4.1: a leading 0 of the
// national form is dropped for the countries that write one).
export const COUNTRIES = [
  ['AR', 'Argentina', '54'], ['AT', 'Austria', '43'], ['AU', 'Australia', '61'], ['BE', 'Belgium', '32'],
  ['BG', 'Bulgaria', '359'], ['BR', 'Brazil', '55'], ['CA', 'Canada', '1'], ['CH', 'Switzerland', '41'],
  ['CL', 'Chile', '56'], ['CN', 'China', '86'], ['CO', 'Colombia', '57'], ['CZ', 'Czechia', '420'],
  ['DE', 'Germany', '49'], ['DK', 'Denmark', '45'], ['EE', 'Estonia', '372'], ['EG', 'Egypt', '20'],
  ['ES', 'Spain', '34'], ['FI', 'Finland', '358'], ['FR', 'France', '33'], ['GB', 'United Kingdom', '44'],
  ['GR', 'Greece', '30'], ['HK', 'Hong Kong', '852'], ['HR', 'Croatia', '385'], ['HU', 'Hungary', '36'],
  ['ID', 'Indonesia', '62'], ['IE', 'Ireland', '353'], ['IL', 'Israel', '972'], ['IN', 'India', '91'],
  ['IS', 'Iceland', '354'], ['IT', 'Italy', '39'], ['JP', 'Japan', '81'], ['KE', 'Kenya', '254'],
  ['KR', 'South Korea', '82'], ['LI', 'Liechtenstein', '423'], ['LT', 'Lithuania', '370'], ['LU', 'Luxembourg', '352'],
  ['LV', 'Latvia', '371'], ['MA', 'Morocco', '212'], ['MX', 'Mexico', '52'], ['MY', 'Malaysia', '60'],
  ['NG', 'Nigeria', '234'], ['NL', 'Netherlands', '31'], ['NO', 'Norway', '47'], ['NZ', 'New Zealand', '64'],
  ['PE', 'Peru', '51'], ['PH', 'Philippines', '63'], ['PK', 'Pakistan', '92'], ['PL', 'Poland', '48'],
  ['PT', 'Portugal', '351'], ['RO', 'Romania', '40'], ['RS', 'Serbia', '381'], ['SA', 'Saudi Arabia', '966'],
  ['SE', 'Sweden', '46'], ['SG', 'Singapore', '65'], ['SI', 'Slovenia', '386'], ['SK', 'Slovakia', '421'],
  ['TH', 'Thailand', '66'], ['TR', 'Türkiye', '90'], ['TW', 'Taiwan', '886'], ['UA', 'Ukraine', '380'],
  ['AE', 'United Arab Emirates', '971'], ['US', 'United States', '1'], ['VN', 'Vietnam', '84'], ['ZA', 'South Africa', '27'],
].sort((a, b) => a[1].localeCompare(b[1]));

// Italy keeps the leading 0 of landlines in E.164; everywhere else in this
// list a leading 0 of the national number is a trunk prefix.
const KEEPS_ZERO = new Set(['IT']);

// toE164 joins a calling code and a national number as typed. A number
// typed with + or 00 is taken as international and the picker is ignored.
export function toE164(country, national) {
  const n = String(national).trim();
  if (n.startsWith('+') || n.startsWith('00')) return n;
  const c = COUNTRIES.find((x) => x[0] === country);
  if (!c) return n;
  let digits = n.replace(/[\s\-./()]/g, '');
  if (!KEEPS_ZERO.has(country)) digits = digits.replace(/^0+/, '');
  return '+' + c[2] + digits;
}

// guessCountry picks the region of the browser's language, if listed.
export function guessCountry() {
  for (const l of navigator.languages || [navigator.language || '']) {
    const m = /-([A-Z]{2})$/i.exec(l);
    if (m && COUNTRIES.some((x) => x[0] === m[1].toUpperCase())) return m[1].toUpperCase();
  }
  return 'US';
}
