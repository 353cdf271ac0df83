// Time-series charts, drawn by the vendored uPlot (loaded as the global `uPlot` by a classic
// script before the modules run). A chart keeps a fixed height, so data arriving never moves
// the page; it follows its container's width and is rebuilt when the theme changes (uPlot
// paints on a canvas with the colours it was given).

/** The value of a CSS custom property on the root element. */
export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * A line chart in `container` (which sets the height in CSS). `series` is
 * `[{label, color: '--css-var'}]`; `fmt` formats the y values in the legend and axis; `points`
 * marks every value (for sparse series, whose gaps would otherwise hide lone values).
 * Returns `{setData(xs, ys[]), destroy()}`; times in `xs` are Unix seconds.
 */
export function lineChart(container, { series, fmt = (v) => String(v), points = false }) {
  let data = [[], ...series.map(() => [])];
  let chart = null;

  const build = () => {
    if (chart) chart.destroy();
    if (typeof window.uPlot !== 'function') return;
    const text = cssVar('--muted');
    const grid = cssVar('--grid');
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const rect = container.getBoundingClientRect();
    const legendHeight = 28;
    chart = new window.uPlot({
      width: Math.max(200, Math.floor(rect.width)),
      height: Math.max(100, Math.floor(rect.height) - legendHeight),
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      legend: { live: true },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        // One short label per tick: uPlot's default two-line date labels collide at this width.
        {
          ...axis,
          space: 90,
          values: (u, vals) => vals.map((v) => new Date(v * 1000).toLocaleTimeString([], {
            hour: '2-digit', minute: '2-digit', second: '2-digit',
          })),
        },
        { ...axis, size: 56, values: (u, vals) => vals.map((v) => fmt(v)) },
      ],
      series: [
        { value: (u, v) => (v === null ? '—' : new Date(v * 1000).toLocaleTimeString()) },
        ...series.map((s) => ({
          label: s.label,
          stroke: cssVar(s.color),
          width: 1.5,
          points: { show: points, size: 4, fill: cssVar(s.color) },
          value: (u, v) => (v === null || v === undefined ? '—' : fmt(v)),
        })),
      ],
    }, data, container);
  };

  const resize = new ResizeObserver(() => {
    if (!chart) return;
    const rect = container.getBoundingClientRect();
    const width = Math.max(200, Math.floor(rect.width));
    if (Math.abs(width - chart.width) >= 2) chart.setSize({ width, height: chart.height });
  });
  resize.observe(container);
  const onTheme = () => build();
  document.addEventListener('hopper:theme', onTheme);
  build();

  return {
    setData(xs, ys) {
      data = [xs, ...ys];
      if (chart) chart.setData(data);
    },
    destroy() {
      resize.disconnect();
      document.removeEventListener('hopper:theme', onTheme);
      if (chart) chart.destroy();
      chart = null;
    },
  };
}
