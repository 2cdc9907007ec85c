/** The inbox's stylesheet and script: small enough to keep inline, served from /assets. */

export const APP_CSS = `
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --bg:#fff; --soft:#f6f8fa; --accent:#0a58ca;
  --ok:#116329; --warn:#9a6700; --bad:#b42318; --bad-bg:#fdecea; --emu-bg:#fff8c5; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
a { color:var(--accent); }
.sr { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); }
.skip { position:absolute; left:-999px; } .skip:focus { left:8px; top:8px; background:#fff; padding:4px 8px; z-index:9; }
header.top { display:flex; flex-wrap:wrap; gap:.5rem 1.25rem; align-items:center; padding:.6rem 1rem; border-bottom:1px solid var(--line); background:var(--soft); }
header.top nav { display:flex; flex-wrap:wrap; gap:.25rem .9rem; }
header.top nav a { text-decoration:none; padding:.15rem 0; }
header.top nav a[aria-current=page] { font-weight:700; border-bottom:2px solid var(--accent); }
.who { margin-left:auto; display:flex; gap:.5rem; align-items:center; }
main { padding:1rem; max-width:1200px; }
h1 { font-size:1.4rem; margin:.2rem 0 1rem; } h2 { font-size:1.1rem; margin:1.5rem 0 .5rem; }
.banner { margin:0; padding:.5rem 1rem; font-weight:600; }
.banner.emulator { background:var(--emu-bg); color:#3d2e00; }
.banner.killed { background:var(--bad); color:#fff; } .banner.killed a { color:#fff; }
.flash { padding:.5rem .75rem; border-radius:6px; margin:.75rem 1rem; }
main .flash { margin:.75rem 0; }
.flash.ok { background:#dafbe1; color:var(--ok); } .flash.error { background:var(--bad-bg); color:var(--bad); }
table { border-collapse:collapse; width:100%; } th,td { text-align:left; padding:.4rem .5rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:.85rem; color:var(--muted); font-weight:600; }
.num { text-align:right; font-variant-numeric:tabular-nums; }
.muted { color:var(--muted); } small { color:var(--muted); }
.card { border:1px solid var(--line); border-radius:8px; padding:.75rem 1rem; margin:0 0 1rem; }
.card h2 { margin:.1rem 0 .4rem; font-size:1.05rem; }
.why { font-weight:600; } .facts { display:flex; flex-wrap:wrap; gap:.25rem 1.25rem; margin:.4rem 0; padding:0; list-style:none; }
.actions { display:flex; flex-wrap:wrap; gap:.5rem; align-items:flex-end; margin-top:.5rem; }
.actions form, form.inline { display:flex; flex-wrap:wrap; gap:.4rem; align-items:flex-end; }
details.decide { margin-top:.5rem; } details.decide > summary { cursor:pointer; }
label { display:flex; flex-direction:column; gap:.15rem; font-size:.9rem; }
input, select { font:inherit; padding:.35rem .5rem; border:1px solid #8c959f; border-radius:6px; min-width:0; }
button { font:inherit; padding:.4rem .8rem; border-radius:6px; border:1px solid #8c959f; background:#fff; cursor:pointer; }
button.primary { background:#1f883d; border-color:#1f883d; color:#fff; }
button.danger { background:var(--bad); border-color:var(--bad); color:#fff; }
button.big-red { background:var(--bad); border-color:#7a1712; color:#fff; font-size:1.2rem; padding:.8rem 1.4rem; font-weight:700; }
button.link { border:0; background:none; color:var(--accent); text-decoration:underline; padding:0; }
button:focus-visible, a:focus-visible, input:focus-visible { outline:3px solid #0969da; outline-offset:2px; }
.bar { position:relative; height:1.1rem; background:#eaeef2; border-radius:4px; overflow:hidden; min-width:8rem; }
.bar > span { display:block; height:100%; background:#2da44e; } .bar > span.warm { background:#bf8700; } .bar > span.hot { background:var(--bad); }
.bar > em { position:absolute; right:.3rem; top:0; font-size:.75rem; font-style:normal; line-height:1.1rem; }
.filters { display:flex; flex-wrap:wrap; gap:.5rem; align-items:flex-end; margin-bottom:1rem; }
.state { display:inline-block; padding:0 .4rem; border-radius:4px; font-size:.85rem; background:#eaeef2; }
.state.suspended { background:#fff8c5; } .state.done { background:#dafbe1; } .state.killed,.state.failed,.state.denied,.state.expired { background:var(--bad-bg); }
pre { white-space:pre-wrap; word-break:break-word; background:var(--soft); padding:.5rem; border-radius:6px; font-size:.85rem; }
.charts { display:grid; grid-template-columns:repeat(auto-fit,minmax(320px,1fr)); gap:1rem; }
body.login main { max-width:28rem; margin:10vh auto; } body.login form { display:flex; flex-direction:column; gap:.75rem; }
@media (max-width:640px) { th.opt, td.opt { display:none; } main { padding:.6rem; } }
/* runs pages */
.scroll { overflow-x:auto; position:relative; }
summary:focus-visible, select:focus-visible { outline:3px solid #0969da; outline-offset:2px; }
.crumbs { margin:-.5rem 0 .5rem; }
.pager { display:flex; flex-wrap:wrap; gap:1rem; margin:.75rem 0; }
table.runs td.spend { min-width:9rem; } table.runs td.spend small { display:block; } table.runs td.num { white-space:nowrap; }
table.timeline td { white-space:nowrap; }
form.kill.compact { flex-wrap:nowrap; } form.kill.compact input[name=reason] { width:9rem; min-width:0; }
form.kill.compact .reason > span { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); }
.status { margin:0 0 .25rem; font-size:1.05rem; } .status .state { font-size:1rem; }
.actions-card h2 { margin-top:.1rem; }
table.limits { max-width:44rem; } table.limits td.bar-cell { width:45%; } table.limits td { vertical-align:middle; }
dl.detail { display:grid; grid-template-columns:max-content 1fr; gap:.15rem 1rem; margin:.4rem 0; }
dl.detail dt { color:var(--muted); } dl.detail dd { margin:0; word-break:break-word; }
tr.attempt td { background:var(--bad-bg); }
.outcome.refused, .outcome.error, .outcome.expired { color:var(--bad); font-weight:600; }
ol.conversation { list-style:none; padding:0; margin:0; }
ol.conversation > li { border-left:3px solid var(--line); padding:.1rem 0 .1rem .75rem; margin:0 0 .75rem; }
ol.conversation > li.model { border-color:#0969da; } ol.conversation > li.tool { border-color:#8250df; } ol.conversation > li.input { border-color:#1f883d; }
ol.conversation .who { margin:0 0 .25rem; } ol.conversation pre { margin:.25rem 0; }
pre.call { border-left:3px solid #8250df; } pre.error { background:var(--bad-bg); color:var(--bad); }
.clip > details > summary { cursor:pointer; font-size:.85rem; }
@media (max-width:640px) { form.kill.compact { flex-wrap:wrap; } form.kill.compact input[name=reason] { width:100%; }
  td.id { word-break:break-all; min-width:7rem; } }
/* money pages */
.scroll { overflow-x:auto; -webkit-overflow-scrolling:touch; }
section > h3 { font-size:1rem; margin:1rem 0 .4rem; }
.state.active,.state.ok { background:#dafbe1; color:var(--ok); } .state.frozen { background:#ddf4ff; color:#0a3069; }
.state.exhausted,.state.alarmed,.state.revoked { background:var(--bad-bg); color:var(--bad); }
dl.facts-grid { display:grid; grid-template-columns:max-content 1fr; gap:.2rem 1rem; margin:.75rem 0; } dl.facts-grid dt { color:var(--muted); } dl.facts-grid dd { margin:0; }
.card.budget .bar { max-width:32rem; }
.actions-block .actions { align-items:flex-start; }
.global-switch { border:2px solid var(--bad); border-radius:8px; padding:.75rem 1rem; margin:1rem 0; }
.global-switch.on { background:var(--bad-bg); } .global-switch h2 { margin-top:0; }
.chart { position:relative; height:280px; margin-bottom:.5rem; }
table.spend th, table.spend td { font-size:.85rem; white-space:nowrap; }
.summary { font-size:1.05rem; }
.new-key { border:2px solid #1f883d; background:#dafbe1; border-radius:8px; padding:.75rem 1rem; margin:0 0 1rem; }
.new-key h2 { margin-top:0; } input.key { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; width:100%; background:#fff; }
tr.revoked td, tr.revoked th { color:var(--muted); } table.keys code { word-break:break-all; }
td form.inline { flex-wrap:wrap; } td .reason input { min-width:9rem; }
@media (max-width:640px) { .global-switch button.big-red { width:100%; } dl.facts-grid { grid-template-columns:1fr; } td .bar { min-width:5rem; } }
/* the request on an item, the viewer hint, reason fields wide enough for their placeholder */
dl.request { display:grid; grid-template-columns:max-content minmax(0,1fr); gap:.2rem .75rem; margin:.5rem 0; }
dl.request dt { color:var(--muted); font-size:.9rem; } dl.request dd { margin:0; min-width:0; }
dl.request pre.ask { margin:0; max-height:9rem; overflow:auto; border-left:3px solid #1f883d; }
dl.request code { word-break:break-all; font-size:.85rem; }
.hint { background:#ddf4ff; color:#0a3069; border-radius:6px; padding:.5rem .75rem; margin:.5rem 0 1rem; }
label.reason input { width:18rem; max-width:100%; }
.actions-card .pending { border-bottom:1px solid var(--line); padding-bottom:.75rem; margin-bottom:.75rem; }
/* spend page: two charts or top tables a row, short tables */
.charts.two { grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr)); gap:.25rem 1.5rem; }
.charts.two .chart { height:200px; } .bar > span.share { background:#0969da; } .charts.two h3 { margin:.5rem 0 .25rem; }
details.how { margin:0 0 .5rem; } details.numbers > summary, details.how > summary { cursor:pointer; font-size:.85rem; color:var(--muted); }
table.top th, table.top td { padding:.25rem .5rem; font-size:.9rem; } table.top td.num { white-space:nowrap; }
table.top th[scope=row] { word-break:break-word; } table.alarms td.what { min-width:16rem; }
${Array.from({ length: 101 }, (_, i) => `.bar > span[data-pct="${i}"]{width:${i}%}`).join('\n')}
`;

export const APP_JS = `
(() => {
  // Confirmation for forms that ask for it (kill switches, kills).
  document.addEventListener('submit', (e) => {
    const f = e.target;
    if (f instanceof HTMLFormElement && f.dataset.confirm && !window.confirm(f.dataset.confirm)) e.preventDefault();
  });
  // Live regions: a page marks what it shows with data-live; on a matching server-sent event the
  // region is re-fetched from the server and swapped in (no reload, forms keep working).
  const live = document.querySelector('[data-live]');
  if (!live || !window.EventSource) return;
  const want = live.dataset.live;
  let timer;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const res = await fetch(location.href, { headers: { accept: 'text/html' } });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
      const next = doc.querySelector('[data-live]');
      if (!next) return;
      // Keep what the reader was doing across the swap: opened details, typed text, focus.
      const keyOf = (el) => (el.form ? el.form.getAttribute('action') : '') + '|' + el.name;
      const open = new Set([...live.querySelectorAll('details[open][id], details[open][data-keep]')].map((d) => d.id || d.dataset.keep));
      const typed = new Map();
      for (const el of live.querySelectorAll('input:not([type=hidden]), textarea, select')) if (el.name && el.value) typed.set(keyOf(el), el.value);
      const focused = live.contains(document.activeElement) && document.activeElement.name ? keyOf(document.activeElement) : null;
      live.innerHTML = next.innerHTML;
      for (const d of live.querySelectorAll('details')) if (open.has(d.id || d.dataset.keep)) d.open = true;
      for (const el of live.querySelectorAll('input:not([type=hidden]), textarea, select')) {
        const k = keyOf(el);
        if (typed.has(k)) el.value = typed.get(k);
        if (k === focused) el.focus();
      }
      live.dispatchEvent(new Event('live:updated'));
    }, 150);
  };
  const es = new EventSource('/events');
  es.addEventListener('approval', (e) => { if (want === 'approvals' || want.startsWith('run:')) refresh(); });
  es.addEventListener('run', (e) => {
    try { const d = JSON.parse(e.data); if (want === 'runs' || want === 'run:' + d.id) refresh(); } catch {}
  });
  document.documentElement.dataset.live = 'connected';
  // Whatever happened between the page's render and this (re)connection was sent to nobody:
  // every time the stream opens, and on its 'ready', the region is read again.
  es.addEventListener('open', () => { document.documentElement.dataset.live = 'open'; refresh(); });
  es.addEventListener('ready', () => { document.documentElement.dataset.live = 'ready'; refresh(); });
})();
`;
