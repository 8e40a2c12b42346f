// The inspector page at `/`: paste a token, subscribe to a table, watch frames arrive (plain HTML, no build step).
export const inspectorPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pgrelay inspector</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:60rem}input,button{font:inherit;padding:.3rem}#log{font:12px ui-monospace,monospace;white-space:pre-wrap;background:#f5f5f5;padding:1rem;height:28rem;overflow:auto}</style>
</head><body>
<h1>pgrelay inspector</h1>
<p>Token <input id="token" size="60" placeholder="a JWT (pgrelay token --tenant 7)"> Table <input id="table" value="public.orders">
<label><input id="snap" type="checkbox"> snapshot</label> <button id="go">Connect</button> <span id="status">closed</span></p>
<div id="log"></div>
<script>
const $ = (id) => document.getElementById(id);
let ws;
$('go').onclick = () => {
  if (ws) ws.close();
  const url = location.origin.replace(/^http/, 'ws') + '/ws';
  ws = new WebSocket(url, ['pgrelay.v1', 'bearer.' + $('token').value.trim()]);
  $('status').textContent = 'connecting';
  ws.onopen = () => {
    $('status').textContent = 'open';
    ws.send(JSON.stringify({ type: 'subscribe', id: 'inspector', table: $('table').value, ...($('snap').checked ? { snapshot: true } : {}) }));
  };
  ws.onclose = (e) => { $('status').textContent = 'closed (' + e.code + (e.reason ? ' ' + e.reason : '') + ')'; };
  ws.onmessage = (e) => { const l = $('log'); l.textContent = e.data + '\\n' + l.textContent.slice(0, 200000); };
};
</script></body></html>`;
