// "Use this in your app": the subscription in view written with the client library (pgrelay/client), ready to copy.
import { ui } from './dom.js';
import type { ConsoleSubscribe } from './types.js';

export function showSnippet(m: ConsoleSubscribe, primaryKey: string[]): void {
  const table = JSON.stringify(m.table);
  const url = JSON.stringify(location.origin.replace(/^http/, 'ws') + '/ws');
  const filter = m.filter ? JSON.stringify(m.filter) : undefined;
  const pk = JSON.stringify(primaryKey);
  const liveOptions = [...(filter ? ['filter: ' + filter] : []), ...(pk !== '["id"]' ? ['primaryKey: ' + pk] : [])];
  const subOptions = [m.snapshot ? 'snapshot: true' : 'since: ' + m.since, ...(filter ? ['filter: ' + filter] : [])].join(', ');
  const lines = [
    ...(m.snapshot ? ["import { useQuery } from '@tanstack/react-query';"] : []),
    "import { createRelayClient } from 'pgrelay/client';",
    ...(m.snapshot ? ["import { liveQueryOptions } from 'pgrelay/client/tanstack';"] : []),
    '',
    '// token: a JWT your backend signs with the tenant claim (in development: npm run pgrelay -- token --tenant <id>)',
    "const client = createRelayClient({ url: " + url + ", token: () => fetch('/api/relay-token').then((r) => r.text()) });",
    '',
    ...(m.snapshot ? [
      '// React + TanStack Query: the rows now, then kept current by every commit',
      'export function Rows() {',
      '  const { data: rows } = useQuery(liveQueryOptions(client, ' + table + (liveOptions.length ? ', { ' + liveOptions.join(', ') + ' }' : '') + '));',
      '  return <pre>{JSON.stringify(rows, null, 2)}</pre>;',
      '}',
      '',
      '// or with any framework:',
    ] : []),
    'const subscription = client.subscribe(' + table + ', { ' + subOptions + ' }, {',
    ...(m.snapshot ? ['  onSnapshot: (rows, seq) => console.log(rows),'] : []),
    '  onChange: (change, tx) => console.log(change.op, change.pk, change.row),',
    '});',
    '// later: subscription.unsubscribe()',
  ];
  ui.snippetCode.textContent = lines.join('\n');
  ui.snippet.hidden = false;
}

/** Copies the snippet (or, where the clipboard is refused, selects it). */
export function copySnippet(): void {
  navigator.clipboard.writeText(ui.snippetCode.textContent ?? '').then(
    () => { ui.copySnippet.textContent = 'Copied'; setTimeout(() => (ui.copySnippet.textContent = 'Copy'), 1500); },
    () => getSelection()?.selectAllChildren(ui.snippetCode));
}
