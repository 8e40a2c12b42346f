/// <reference types="vite/client" />
// The entry: where the relay is and which token to present (the page URL's query first, then Vite env), one relay client, one QueryClient.
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { createRelayClient, type RelayClientOptions } from 'pgrelay/client';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import type { DB } from './db.js';
import { OrdersDashboard } from './orders-dashboard.js';

const query = new URLSearchParams(location.search);
const url: string = query.get('relay') || import.meta.env.VITE_RELAY_URL || 'ws://localhost:8080/ws';
const token: string | undefined = query.get('token') || import.meta.env.VITE_RELAY_TOKEN;
// `auto` (the default) falls back to Server-Sent Events where WebSockets cannot pass; `websocket` or `sse` forces one.
const transport = (query.get('transport') || import.meta.env.VITE_RELAY_TRANSPORT || undefined) as RelayClientOptions['transport'];

/** Whether the token names someone (`sub`), who can then be shown among the viewers (presence). */
const hasSub = (jwt: string): boolean => {
  try {
    return typeof JSON.parse(atob(jwt.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))).sub === 'string';
  } catch {
    return false;
  }
};

const root = createRoot(document.getElementById('root')!);
if (!token) {
  root.render(
    <p className="error">
      No token. Mint one with <code>npm run pgrelay -- token --tenant acme</code> and open this page with <code>?token=…</code>, or set <code>VITE_RELAY_TOKEN</code>.
    </p>,
  );
} else {
  // In production the token would come from your backend: pass a function, and it is called again before expiry and on reconnect.
  const client = createRelayClient<DB>({ url, token, transport });
  const queryClient = new QueryClient();
  root.render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <OrdersDashboard client={client} viewers={hasSub(token)} />
      </QueryClientProvider>
    </StrictMode>,
  );
}
