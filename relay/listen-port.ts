// Binds a uWS app to host:port, turning a refused bind into one clear sentence.
import { PgRelayError } from '../db/errors.js';
import type { UWS } from './uws.js';

/** Listens and resolves with the listen socket and the bound port (useful with port 0). */
export function listenPort(uws: typeof UWS, app: UWS.TemplatedApp, host: string, port: number): Promise<{ socket: UWS.us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (!socket) {
        reject(new PgRelayError('port_unavailable', `Cannot listen on ${host}:${port}: the port is in use or not allowed; set PORT (or --port) to a free port.`));
        return;
      }
      resolve({ socket, port: uws.us_socket_local_port(socket as unknown as UWS.us_socket) });
    });
  });
}
