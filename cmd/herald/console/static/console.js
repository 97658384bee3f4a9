// The overview's live chart: polls /ui/rates every second and draws the
// messages accepted and deliveries succeeded per second on this node over
// the last minute. The page works without it.
'use strict';
(function () {
  const svg = document.getElementById('chart');
  if (!svg) return;
  const max = 60, w = 600, h = 120;
  const accepted = [], delivered = [];
  let last = null;
  const line = (id, values, top) => {
    const pts = values.map((v, i) => `${(i * w) / (max - 1)},${h - (v / top) * (h - 4)}`);
    document.getElementById(id).setAttribute('points', pts.join(' '));
  };
  const text = (id, s) => { document.getElementById(id).textContent = s; };
  async function poll() {
    try {
      const res = await fetch('/ui/rates', { cache: 'no-store' });
      if (!res.ok) return;
      const s = await res.json();
      text('backlog', String(s.backlog));
      if (last && s.at > last.at) {
        const secs = (s.at - last.at) / 1000;
        accepted.push(Math.max(0, (s.accepted - last.accepted) / secs));
        delivered.push(Math.max(0, (s.delivered - last.delivered) / secs));
        if (accepted.length > max) { accepted.shift(); delivered.shift(); }
        const top = Math.max(1, ...accepted, ...delivered);
        line('accepted-line', accepted, top);
        line('delivered-line', delivered, top);
        text('accepted-rate', accepted[accepted.length - 1].toFixed(1));
        text('delivered-rate', delivered[delivered.length - 1].toFixed(1));
        text('chart-top', top.toFixed(1));
        svg.dataset.samples = String(accepted.length);
      }
      last = s;
    } catch (e) {
      // the next poll tries again
    }
  }
  poll();
  setInterval(poll, 1000);
})();
