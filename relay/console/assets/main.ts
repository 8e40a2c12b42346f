// The console's entry module (index.html loads it as /console/main.js): wires the page's controls, then connects with a saved token.
import { devToken, loadDev, loadTables, pollStats } from './api.js';
import { closeSocket, openSocket } from './connection.js';
import { ui } from './dom.js';
import { addFilter } from './filters.js';
import { clearLog, togglePause } from './frame-log.js';
import { copySnippet } from './snippet.js';
import { errorText, showError, state } from './state.js';
import { receive, subscribe } from './view.js';

/** Connects with the token in the box (kept for this tab): its tables, the relay's load, and the socket. */
function connect(): void {
  state.token = ui.token.value.trim();
  sessionStorage.setItem('pgrelay.console.token', state.token);
  showError('');
  closeSocket();
  state.wanted = true;
  loadTables().then(pollStats, (e: unknown) => showError(errorText(e)));
  openSocket(receive);
}

ui.devToken.onclick = async () => {
  try {
    ui.token.value = await devToken();
    connect();
  } catch (e) { showError(errorText(e)); }
};
ui.connect.onclick = connect;
ui.disconnect.onclick = closeSocket;
ui.subscribe.onclick = () => { state.seq = undefined; subscribe(); };
ui.addFilter.onclick = addFilter;
ui.copySnippet.onclick = copySnippet;
ui.pause.onclick = togglePause;
ui.clear.onclick = clearLog;

// a link may carry the token (#token=…: never sent to a server); else this tab's last one
const saved = new URLSearchParams(location.hash.slice(1)).get('token') || sessionStorage.getItem('pgrelay.console.token');
void loadDev();
if (saved) { ui.token.value = saved; connect(); }
