// pingan command-center dashboard. Talks only to the pingan query API on the same origin;
// the map is drawn from the project's own town polygons (/v1/areas.geojson), no tiles.
import * as echarts from 'echarts/core';
import { MapChart, CustomChart, LineChart, BarChart } from 'echarts/charts';
import { GeoComponent, GridComponent, TooltipComponent, LegendComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import './style.css';

echarts.use([MapChart, CustomChart, LineChart, BarChart, GeoComponent, GridComponent, TooltipComponent, LegendComponent, CanvasRenderer]);

const I18N = {
  zh: {
    title: '闵行区警情实时指挥大屏', period: '时段', type: '类型', area: '街镇', all: '全部类型', all_area: '全区',
    p_today: '今日', p_24h: '近24小时', p_7d: '近7天', p_30d: '近30天', p_182d: '近半年',
    night: '夜间地图 21–3时', connecting: '连接中', live: '实时', offline: '重连中',
    today_total: '今日警情', last_hour: '近1小时', by_category: '今日分类警情', heatmap: '警情热力图',
    series: '近24小时警情 vs 常态（前4周同时段均值）', alerts: '预警', ranking: '小区排行榜', incidents: '最新警情',
    actual: '实际', usual: '常态', none_alerts: '暂无预警', none_incidents: '暂无警情', none_rank: '暂无达到最小数量的小区',
    cells: '个网格', events: '起', observed: '实际', expected: '预期', vs_prev: '环比', night_on: '夜间 21:00–03:00',
  },
  en: {
    title: 'Minhang Live Incident Command Screen', period: 'Period', type: 'Type', area: 'Town', all: 'All types', all_area: 'All Minhang',
    p_today: 'Today', p_24h: 'Last 24 h', p_7d: 'Last 7 days', p_30d: 'Last 30 days', p_182d: 'Last half-year',
    night: 'Night map 21–3 h', connecting: 'Connecting', live: 'Live', offline: 'Reconnecting',
    today_total: 'Today', last_hour: 'Last hour', by_category: 'Today by category', heatmap: 'Incident heat map',
    series: 'Last 24 h vs usual (mean of the same hours, previous 4 weeks)', alerts: 'Alerts', ranking: 'Compound ranking', incidents: 'Newest incidents',
    actual: 'Actual', usual: 'Usual', none_alerts: 'No alerts', none_incidents: 'No incidents', none_rank: 'No compound above the minimum count',
    cells: 'cells', events: 'events', observed: 'obs', expected: 'exp', vs_prev: 'vs prev.', night_on: 'Night 21:00–03:00',
  },
};

const CAT_COLORS = {
  CRIM: '#ff4d4f', FRAUD: '#ff9c2a', PUB: '#ffd84d', DSP: '#38c6ff', TRF: '#3ddc84',
  HAZ: '#ff6ec7', HELP: '#9a7dff', RPT: '#5be7c4', NONP: '#7fa7ff', OTH: '#8ea3c9',
};
const LEVEL_ZH = { red: '一级', orange: '二级', yellow: '三级', green: '四级', blue: '四级' };

const state = {
  lang: 'zh', period: '24h', category: '', town: '', night: false,
  meta: null, counts: null, incidents: [], alerts: [], cells: [], townLabels: [], dirty: false,
};
const $ = (id) => document.getElementById(id);
const t = (k) => I18N[state.lang][k] ?? k;
const lbl = (row, key) => row[`${key}_${state.lang}`] ?? row[key] ?? '';
const name = (o) => (state.lang === 'zh' ? o.name_zh : o.name_en);
const HOUR = 3600e3;
const SH = 8 * HOUR; // Asia/Shanghai is UTC+8 all year

function shanghaiParts(ms) {
  const d = new Date(ms + SH);
  return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds() };
}
const pad = (n) => String(n).padStart(2, '0');
const iso = (ms) => {
  const p = shanghaiParts(ms);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)}T${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}+08:00`;
};
const hhmm = (s) => s.slice(11, 16);
const shanghaiMidnight = (ms) => Math.floor((ms + SH) / 86400e3) * 86400e3 - SH;

function range() {
  const now = Date.now();
  const to = Math.ceil(now / 60e3) * 60e3;
  const from = {
    today: shanghaiMidnight(now), '24h': to - 24 * HOUR, '7d': to - 7 * 24 * HOUR,
    '30d': to - 30 * 24 * HOUR, '182d': to - 182 * 24 * HOUR,
  }[state.period];
  return { from, to };
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v != null) q.set(k, v);
  return q.toString();
}

async function api(path, params = {}) {
  const r = await fetch(`${path}?${query(params)}`);
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

// ---------- counters ----------
function renderCounters() {
  const c = state.counts;
  if (!state.meta) return;
  $('today-total').textContent = c ? c.today_total.toLocaleString() : '–';
  $('last-hour').textContent = c ? c.last_hour.toLocaleString() : '–';
  const box = $('counters');
  const prev = {};
  for (const el of box.querySelectorAll('.counter')) prev[el.dataset.code] = el.querySelector('.val').textContent;
  box.innerHTML = '';
  for (const cat of state.meta.categories) {
    const n = c?.today_by_category?.[cat.code] ?? 0;
    const el = document.createElement('div');
    el.className = 'counter';
    el.dataset.code = cat.code;
    el.style.setProperty('--c', CAT_COLORS[cat.code] || '#38c6ff');
    el.innerHTML = `<div class="name"></div><div class="val"></div>`;
    el.querySelector('.name').textContent = name(cat);
    el.querySelector('.val').textContent = n.toLocaleString();
    if (prev[cat.code] !== undefined && prev[cat.code] !== n.toLocaleString()) {
      el.classList.add('flash');
      setTimeout(() => el.classList.remove('flash'), 1500);
    }
    box.appendChild(el);
  }
}

// ---------- map ----------
// Area-weighted centroid of the largest outer ring of a (Multi)Polygon.
function centroid(g) {
  const rings = g.type === 'Polygon' ? [g.coordinates[0]] : g.coordinates.map((p) => p[0]);
  let best = null;
  for (const r of rings) {
    let a = 0, x = 0, y = 0;
    for (let i = 0; i < r.length - 1; i++) {
      const [x0, y0] = r[i];
      const [x1, y1] = r[i + 1];
      const f = x0 * y1 - x1 * y0;
      a += f; x += (x0 + x1) * f; y += (y0 + y1) * f;
    }
    if (!best || Math.abs(a) > Math.abs(best.a)) best = { a, c: [x / (3 * a), y / (3 * a)] };
  }
  return best.c;
}
let mapChart;
function heatColor(x) {
  // x in [0, 1]: deep blue → cyan → yellow → red
  const stops = [[0, [30, 80, 200]], [0.35, [56, 198, 255]], [0.65, [255, 216, 77]], [1, [255, 60, 60]]];
  for (let i = 1; i < stops.length; i++) {
    if (x <= stops[i][0]) {
      const [a, ca] = stops[i - 1];
      const [b, cb] = stops[i];
      const f = (x - a) / (b - a);
      const c = ca.map((v, j) => Math.round(v + (cb[j] - v) * f));
      return `rgba(${c[0]},${c[1]},${c[2]},${0.35 + 0.6 * x})`;
    }
  }
  return 'rgba(255,60,60,.95)';
}

function renderMap() {
  if (!mapChart) return;
  const cells = state.cells;
  const max = Math.max(1, ...cells.map((c) => c.count));
  const townName = state.lang === 'zh' ? 'name_zh' : 'name_en';
  const selected = state.town && state.meta.towns.find((x) => x.code === state.town);
  mapChart.setOption({
    backgroundColor: 'transparent',
    tooltip: {
      trigger: 'item', backgroundColor: '#0b1630', borderColor: '#38c6ff', textStyle: { color: '#e6eefc', fontSize: 16 },
      formatter: (p) => (p.seriesType === 'custom' ? `${p.value[2]} ${t('events')}` : p.name),
    },
    geo: {
      map: 'minhang', nameProperty: townName, roam: false, layoutCenter: ['50%', '52%'], layoutSize: '98%',
      itemStyle: { areaColor: '#0e2452', borderColor: '#3a6fc4', borderWidth: 1.5 },
      emphasis: { disabled: true },
      label: { show: false },
      regions: selected ? [{ name: selected[townName], itemStyle: { areaColor: '#173a78', borderColor: '#9a7dff', borderWidth: 3 } }] : [],
      z: 1,
    },
    series: [{
      id: 'cells', type: 'custom', coordinateSystem: 'geo', geoIndex: 0, z: 5,
      data: cells.map((c) => [c.lon, c.lat, c.count]),
      renderItem: (params, a) => {
        const c = cells[params.dataIndex];
        return {
          type: 'polygon', shape: { points: c.ring.map((p) => a.coord(p)) },
          style: { fill: heatColor(Math.sqrt(c.count / max)), stroke: 'rgba(255,255,255,.25)', lineWidth: 0.6 },
        };
      },
    }, {
      // Town names above the hexagons, readable from across the room.
      id: 'towns', type: 'custom', coordinateSystem: 'geo', geoIndex: 0, z: 10, silent: true,
      data: state.townLabels.map((l) => l.c),
      renderItem: (params, a) => {
        const l = state.townLabels[params.dataIndex];
        const [x, y] = a.coord(l.c);
        return {
          type: 'text', x, y,
          style: {
            text: state.lang === 'zh' ? l.zh : l.en, fill: '#ffffff', stroke: 'rgba(5,11,24,.9)', lineWidth: 4,
            fontSize: state.lang === 'zh' ? 17 : 13, fontWeight: 700, align: 'center', verticalAlign: 'middle',
          },
        };
      },
    }],
  }, { replaceMerge: ['series'] });
  const n = cells.reduce((s, c) => s + c.count, 0);
  $('map-sub').textContent = `${n.toLocaleString()} ${t('events')} · ${cells.length} ${t('cells')}${state.night ? ' · ' + t('night_on') : ''}`;
  document.body.dataset.mapCells = String(cells.length);
}

async function loadHeatmap() {
  const { from, to } = range();
  const res = state.period === '182d' || state.period === '30d' ? 8 : 8;
  const fc = await api('/v1/heatmap', {
    from: iso(from), to: iso(to), res, category: state.category, town: state.town, hours: state.night ? '21-3' : '',
  });
  state.cells = fc.features.map((f) => ({ ring: f.geometry.coordinates[0], lon: f.properties.lon, lat: f.properties.lat, count: f.properties.count }));
  renderMap();
}

// ---------- time series ----------
let seriesChart;
async function loadSeries() {
  const now = Date.now();
  const to = Math.ceil(now / HOUR) * HOUR;
  const from = to - 24 * HOUR;
  const base = { bucket: 'hour', category: state.category, town: state.town };
  const weeks = [0, 1, 2, 3, 4];
  const answers = await Promise.all(weeks.map((w) => api('/v1/counts', { ...base, from: iso(from - w * 7 * 24 * HOUR), to: iso(to - w * 7 * 24 * HOUR) })));
  const slots = Array.from({ length: 24 }, (_, i) => from + i * HOUR);
  const toMap = (ans, shift) => {
    const m = new Map();
    for (const r of ans.rows) m.set(Date.parse(r.bucket) + shift, r.count);
    return m;
  };
  const actualMap = toMap(answers[0], 0);
  const usualMaps = weeks.slice(1).map((w) => toMap(answers[w], w * 7 * 24 * HOUR));
  const actual = slots.map((s) => (s <= now ? actualMap.get(s) ?? 0 : null));
  const usual = slots.map((s) => Math.round((usualMaps.reduce((acc, m) => acc + (m.get(s) ?? 0), 0) / usualMaps.length) * 10) / 10);
  seriesChart.setOption({
    backgroundColor: 'transparent',
    grid: { left: 50, right: 20, top: 30, bottom: 28 },
    legend: { right: 10, top: 0, textStyle: { color: '#e6eefc', fontSize: 15 }, data: [t('actual'), t('usual')] },
    tooltip: { trigger: 'axis', backgroundColor: '#0b1630', borderColor: '#38c6ff', textStyle: { color: '#e6eefc', fontSize: 15 } },
    xAxis: { type: 'category', data: slots.map((s) => `${pad(shanghaiParts(s).h)}:00`), axisLabel: { color: '#8ea3c9', fontSize: 13 }, axisLine: { lineStyle: { color: '#1c3366' } } },
    yAxis: { type: 'value', minInterval: 1, axisLabel: { color: '#8ea3c9', fontSize: 13 }, splitLine: { lineStyle: { color: '#13264d' } } },
    series: [
      { name: t('actual'), type: 'bar', data: actual, itemStyle: { color: '#38c6ff', borderRadius: [3, 3, 0, 0] }, barWidth: '55%' },
      { name: t('usual'), type: 'line', data: usual, smooth: true, symbol: 'none', lineStyle: { color: '#ffd84d', width: 3, type: 'dashed' } },
    ],
  }, true);
}

// ---------- rankings ----------
async function loadRankings() {
  const { from, to } = range();
  const period = state.period === 'today' || state.period === '24h' ? '30d' : state.period;
  const rFrom = period === state.period ? from : to - 30 * 24 * HOUR;
  const v = await api('/v1/rankings', {
    level: 'compound', category: state.category, town: state.town, from: iso(rFrom), to: iso(to), top: 8, min_count: 1,
  });
  const box = $('rankings');
  box.innerHTML = '';
  $('rank-sub').textContent = I18N[state.lang][`p_${period}`] ?? '';
  if (!v.rows.length) box.innerHTML = `<li class="empty">${t('none_rank')}</li>`;
  for (const r of v.rows) {
    const li = document.createElement('li');
    const pct = r.change_pct;
    // Colour only changes beyond chance (the API's binomial test); the rest stay muted.
    const cls = pct == null || !r.change_significant ? 'flat' : pct > 0 ? 'up' : pct < 0 ? 'down' : '';
    const arrow = pct == null ? '–' : `${pct > 0 ? '▲' : pct < 0 ? '▼' : ''}${Math.abs(pct)}%`;
    li.innerHTML = `<span class="rk">${r.rank}</span><span class="nm"></span><span class="n">${r.count}</span><span class="d ${cls}" title="${t('vs_prev')}">${arrow}</span>`;
    li.querySelector('.nm').textContent = name(r);
    box.appendChild(li);
  }
}

// ---------- feeds ----------
function incidentItem(i, fresh) {
  const li = document.createElement('li');
  if (fresh) li.className = 'new';
  const color = CAT_COLORS[i.category] || '#38c6ff';
  li.innerHTML = `<span class="time"></span><span class="tag" style="background:${color}"></span><span class="where"></span><span class="what"></span>`;
  li.querySelector('.time').textContent = hhmm(i.event_time);
  li.querySelector('.tag').textContent = lbl(i, 'subtype');
  li.querySelector('.where').textContent = i.compound ? lbl(i, 'compound') : i.town ? lbl(i, 'town') : '';
  li.querySelector('.what').textContent = i.description;
  return li;
}

function renderIncidents(freshId) {
  const box = $('incidents');
  box.innerHTML = '';
  if (!state.incidents.length) box.innerHTML = `<li class="empty">${t('none_incidents')}</li>`;
  for (const i of state.incidents.slice(0, 14)) box.appendChild(incidentItem(i, i.event_id === freshId));
}

function alertItem(a, fresh) {
  const li = document.createElement('li');
  if (fresh) li.className = 'new';
  const lvl = state.lang === 'zh' ? LEVEL_ZH[a.level] ?? a.level : a.level;
  li.innerHTML = `<span class="time"></span><span class="tag lvl-${a.level}"></span><span class="where"></span><span class="what"></span>`;
  li.querySelector('.time').textContent = hhmm(a.window_end);
  li.querySelector('.tag').textContent = lvl;
  li.querySelector('.where').textContent = lbl(a, 'area');
  li.querySelector('.what').textContent = `${a.subtype ? lbl(a, 'subtype') : lbl(a, 'category')} ${t('observed')} ${a.observed} / ${t('expected')} ${a.expected.toFixed(1)}`;
  return li;
}

function renderAlerts(freshId) {
  const box = $('alerts');
  box.innerHTML = '';
  if (!state.alerts.length) box.innerHTML = `<li class="empty">${t('none_alerts')}</li>`;
  for (const a of state.alerts.slice(0, 8)) box.appendChild(alertItem(a, a.id === freshId));
}

async function loadFeeds() {
  const now = Date.now();
  const [inc, al] = await Promise.all([
    api('/v1/incidents', { limit: 20, category: state.category, town: state.town, from: iso(now - 7 * 24 * HOUR), to: iso(Math.ceil(now / 60e3) * 60e3 + 60e3) }),
    api('/v1/alerts', { since: iso(now - 24 * HOUR), limit: 50 }),
  ]);
  state.incidents = inc.incidents;
  state.alerts = al.alerts;
  renderIncidents();
  renderAlerts();
}

// ---------- live ----------
function connectLive() {
  const es = new EventSource('/v1/live');
  const dot = $('live-dot');
  es.onopen = () => { dot.className = 'dot live'; $('live-text').textContent = t('live'); };
  es.onerror = () => { dot.className = 'dot down'; $('live-text').textContent = t('offline'); };
  es.addEventListener('counts', (e) => {
    state.counts = JSON.parse(e.data);
    renderCounters();
    document.body.dataset.liveCounts = String(state.counts.today_total);
  });
  es.addEventListener('incident', (e) => {
    const i = JSON.parse(e.data);
    if ((state.category && i.category !== state.category) || (state.town && i.town !== state.town)) return;
    state.incidents = [i, ...state.incidents.filter((x) => x.event_id !== i.event_id)].slice(0, 50);
    renderIncidents(i.event_id);
    state.dirty = true;
  });
  es.addEventListener('alert', (e) => {
    const a = JSON.parse(e.data);
    state.alerts = [a, ...state.alerts.filter((x) => x.id !== a.id)].slice(0, 50);
    renderAlerts(a.id);
  });
}

// ---------- chrome ----------
function applyLang() {
  document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('f-lang').textContent = state.lang === 'zh' ? 'EN' : '中文';
  document.title = t('title');
  fillSelects();
}

function fillSelects() {
  const cat = $('f-category');
  const town = $('f-town');
  cat.innerHTML = `<option value="">${t('all')}</option>` + state.meta.categories.map((c) => `<option value="${c.code}">${name(c)}</option>`).join('');
  town.innerHTML = `<option value="">${t('all_area')}</option>` + state.meta.towns.map((c) => `<option value="${c.code}">${name(c)}</option>`).join('');
  cat.value = state.category;
  town.value = state.town;
}

function tickClock() {
  const p = shanghaiParts(Date.now());
  $('clock').textContent = `${p.y}-${pad(p.mo)}-${pad(p.d)} ${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}`;
}

async function refresh() {
  const jobs = [loadHeatmap(), loadSeries(), loadRankings(), loadFeeds()];
  const results = await Promise.allSettled(jobs);
  for (const r of results) if (r.status === 'rejected') console.error(r.reason);
  state.dirty = false;
}

async function main() {
  const params = new URLSearchParams(location.search);
  if (params.get('lang') === 'en') state.lang = 'en';
  if (params.get('night') === '1') state.night = true;
  const [meta, geo] = await Promise.all([api('/v1/meta'), fetch('/v1/areas.geojson').then((r) => r.json())]);
  state.meta = meta;
  echarts.registerMap('minhang', geo);
  state.townLabels = geo.features.map((f) => ({ zh: f.properties.name_zh, en: f.properties.name_en, c: centroid(f.geometry) }));
  mapChart = echarts.init($('map'), null, { renderer: 'canvas' });
  seriesChart = echarts.init($('series'), null, { renderer: 'canvas' });
  window.addEventListener('resize', () => { mapChart.resize(); seriesChart.resize(); });
  applyLang();
  $('f-night').classList.toggle('on', state.night);
  renderCounters();
  $('f-period').addEventListener('change', (e) => { state.period = e.target.value; refresh(); });
  $('f-category').addEventListener('change', (e) => { state.category = e.target.value; refresh(); });
  $('f-town').addEventListener('change', (e) => { state.town = e.target.value; refresh(); });
  $('f-night').addEventListener('click', () => { state.night = !state.night; $('f-night').classList.toggle('on', state.night); loadHeatmap(); });
  $('f-lang').addEventListener('click', () => {
    state.lang = state.lang === 'zh' ? 'en' : 'zh';
    applyLang(); renderCounters(); renderMap(); renderIncidents(); renderAlerts(); loadSeries(); loadRankings();
  });
  tickClock();
  setInterval(tickClock, 1000);
  connectLive();
  await refresh();
  document.body.dataset.ready = '1';
  // Heat map, series and rankings follow new events at most every 15 s; everything every 2 min.
  setInterval(() => { if (state.dirty) { state.dirty = false; loadHeatmap(); loadRankings(); loadSeries(); } }, 15e3);
  setInterval(refresh, 120e3);
}

main().catch((e) => {
  console.error(e);
  document.body.dataset.error = String(e);
});
