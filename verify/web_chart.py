"""The line-chart script of index.html (`verify.web_report`), kept as a string so that it
ships inside the package: inline SVG, hover values, no library and no network.

``drawChart(id, {x, series: [{name, y, dots}], xlabel, ylabel, title, log})`` draws into the
element with that id; hovering shows the nearest step's values.
"""

CHART_JS = r"""
// Line charts as inline SVG for index.html (verify/web_report.py): no library, no network.
// drawChart(id, {x, series: [{name, y, dots}], xlabel, ylabel, title, log}) draws into the
// element with that id; hovering shows the nearest step's values.
function drawChart(id, spec) {
  var W = 900, H = 300, L = 70, R = 250, T = 28, B = 44, NS = 'http://www.w3.org/2000/svg';
  var colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
  var ok = function (v) { return v !== null && isFinite(v) && (!spec.log || v > 0); };
  var ys = [];
  spec.series.forEach(function (s) { s.y.forEach(function (v) { if (ok(v)) ys.push(v); }); });
  var f = spec.log ? Math.log10 : function (v) { return v; };
  var ymin = Math.min.apply(null, ys.map(f)), ymax = Math.max.apply(null, ys.map(f));
  if (ymax === ymin) { ymax += 1; ymin -= 1; }
  var xmin = spec.x[0], xmax = spec.x[spec.x.length - 1];
  if (xmax === xmin) { xmax += 1; }
  var sx = function (x) { return L + (x - xmin) / (xmax - xmin) * (W - L - R); };
  var sy = function (v) { return T + (ymax - f(v)) / (ymax - ymin) * (H - T - B); };
  var svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('width', W); svg.setAttribute('height', H); svg.setAttribute('class', 'chart');
  var add = function (tag, attrs, text) {
    var el = document.createElementNS(NS, tag);
    for (var k in attrs) { el.setAttribute(k, attrs[k]); }
    if (text !== undefined) { el.textContent = text; }
    svg.appendChild(el); return el;
  };
  add('line', {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#333'});
  add('line', {x1: L, y1: T, x2: L, y2: H - B, stroke: '#333'});
  for (var i = 0; i <= 4; i++) {
    var fx = xmin + (xmax - xmin) * i / 4, fy = ymin + (ymax - ymin) * i / 4;
    var yv = spec.log ? Math.pow(10, fy) : fy;
    add('text', {x: sx(fx), y: H - B + 16, 'text-anchor': 'middle', 'font-size': 11},
        String(Math.round(fx)));
    add('text', {x: L - 6, y: sy(yv) + 4, 'text-anchor': 'end', 'font-size': 11},
        Number(yv.toPrecision(3)).toString());
    add('line', {x1: L, x2: W - R, y1: sy(yv), y2: sy(yv), stroke: '#eee'});
  }
  add('text', {x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle', 'font-size': 12}, spec.xlabel);
  add('text', {x: 14, y: (T + H - B) / 2, 'text-anchor': 'middle', 'font-size': 12,
               transform: 'rotate(-90 14 ' + (T + H - B) / 2 + ')'}, spec.ylabel);
  add('text', {x: (L + W - R) / 2, y: 16, 'text-anchor': 'middle', 'font-size': 13,
               'font-weight': 'bold'}, spec.title);
  spec.series.forEach(function (s, n) {
    var c = colors[n % colors.length], d = '';
    s.y.forEach(function (v, j) {
      if (!ok(v)) { return; }
      if (s.dots) { add('circle', {cx: sx(spec.x[j]), cy: sy(v), r: 2.5, fill: c}); return; }
      d += (d ? 'L' : 'M') + sx(spec.x[j]).toFixed(1) + ',' + sy(v).toFixed(1);
    });
    if (d) { add('path', {d: d, fill: 'none', stroke: c, 'stroke-width': 1.6}); }
    add('rect', {x: W - R + 12, y: T + 4 + 15 * n, width: 10, height: 10, fill: c});
    add('text', {x: W - R + 26, y: T + 13 + 15 * n, 'font-size': 11}, s.name);
  });
  var cursor = add('line', {x1: 0, x2: 0, y1: T, y2: H - B, stroke: '#999', visibility: 'hidden'});
  var tip = document.getElementById('tip');
  svg.addEventListener('mousemove', function (ev) {
    var box = svg.getBoundingClientRect(), px = ev.clientX - box.left, best = 0;
    spec.x.forEach(function (x, j) {
      if (Math.abs(sx(x) - px) < Math.abs(sx(spec.x[best]) - px)) { best = j; }
    });
    cursor.setAttribute('x1', sx(spec.x[best])); cursor.setAttribute('x2', sx(spec.x[best]));
    cursor.setAttribute('visibility', 'visible');
    tip.style.display = 'block';
    tip.style.left = (ev.pageX + 12) + 'px'; tip.style.top = (ev.pageY + 12) + 'px';
    tip.innerHTML = '';
    var head = document.createElement('div'); head.textContent = spec.xlabel + ' ' + spec.x[best];
    tip.appendChild(head);
    spec.series.forEach(function (s) {
      var row = document.createElement('div'), v = s.y[best];
      row.textContent = s.name + ': ' + (v === null ? '-' : Number(v).toPrecision(4));
      tip.appendChild(row);
    });
  });
  svg.addEventListener('mouseleave', function () {
    tip.style.display = 'none'; cursor.setAttribute('visibility', 'hidden');
  });
  document.getElementById(id).appendChild(svg);
}
"""
