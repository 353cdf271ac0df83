// Formatting of numbers, durations and times for display. Numbers use the page's tabular
// numerals (CSS), so a count that changes never shifts its neighbours.

const num = new Intl.NumberFormat(undefined);
const dec1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1, minimumFractionDigits: 1 });

/** 1234 → "1,234"; null → "—". */
export function fmtNum(n) {
  return n === null || n === undefined || Number.isNaN(n) ? '—' : num.format(n);
}

/** A rate with one decimal: 2.5 → "2.5". */
export function fmtRate(n) {
  return n === null || n === undefined || Number.isNaN(n) ? '—' : dec1.format(n);
}

/** A duration in ms, short and human: 850 → "850 ms", 61000 → "1 min 1 s". */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  const neg = ms < 0;
  let v = Math.abs(ms);
  let out;
  if (v < 1000) out = `${Math.round(v)} ms`;
  else if (v < 10_000) out = `${(v / 1000).toFixed(1)} s`;
  else if (v < 60_000) out = `${Math.round(v / 1000)} s`;
  else if (v < 3_600_000) {
    const m = Math.floor(v / 60_000);
    const s = Math.round((v % 60_000) / 1000);
    out = s ? `${m} min ${s} s` : `${m} min`;
  } else if (v < 86_400_000) {
    const hh = Math.floor(v / 3_600_000);
    const m = Math.round((v % 3_600_000) / 60_000);
    out = m ? `${hh} h ${m} min` : `${hh} h`;
  } else {
    const d = Math.floor(v / 86_400_000);
    const hh = Math.round((v % 86_400_000) / 3_600_000);
    out = hh ? `${d} d ${hh} h` : `${d} d`;
  }
  return neg ? `-${out}` : out;
}

/** An RFC 3339 time relative to now: "12 s ago", "in 3 min". */
export function fmtRel(iso, now = Date.now()) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const d = t - now;
  if (Math.abs(d) < 1000) return 'now';
  return d < 0 ? `${fmtDuration(-d)} ago` : `in ${fmtDuration(d)}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
});

/** An RFC 3339 time in the viewer's zone, to the second. */
export function fmtTime(iso) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : dateTime.format(t);
}

/** The end of a job id, enough to tell jobs apart (a UUIDv7 starts with its time). */
export function shortId(id) {
  return id ? `…${id.slice(-8)}` : '';
}

/** JSON for reading: pretty-printed, cut at `max` characters. */
export function prettyJson(value, max = 100_000) {
  if (value === undefined) return '';
  let s;
  try {
    s = JSON.stringify(value, null, 2);
  } catch {
    s = String(value);
  }
  if (s === undefined) return 'null';
  return s.length > max ? `${s.slice(0, max)}\n… (${fmtNum(s.length - max)} more characters)` : s;
}
