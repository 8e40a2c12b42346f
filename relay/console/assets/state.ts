// The console's state, and the header that shows it: the connection's state, the view's seq and the relay's position.
import type { Row } from '../../../client/shared/protocol.js';
import { ui } from './dom.js';
import type { TableInfo } from './types.js';

type Timer = ReturnType<typeof setTimeout>;

export interface ConsoleState {
  ws: WebSocket | undefined;
  /** The socket should be open: reopen it when it drops. */
  wanted: boolean;
  retry: Timer | undefined;
  token: string;
  allTenants: boolean;
  statsTimer: Timer | undefined;
  /** The tables this token may see, and the one in view. */
  tables: TableInfo[];
  table: TableInfo | undefined;
  /** Subscriptions made so far (ids are `console1`, `console2`, …), and the id of the one in view. */
  sub: number;
  active: string | undefined;
  /** The view's columns and primary key. */
  columns: string[];
  pk: string[];
  /** The view's rows by key (the JSON of their key values). */
  rows: Map<string, HTMLTableRowElement>;
  /** A snapshot's rows until its last frame. */
  snapRows: Row[] | undefined;
  /** The view's position: where a reconnect resumes. */
  seq: number | undefined;
  /** The relay's position at connect: transactions up to it are replayed history. */
  connectedAt: number | undefined;
  /** The highest position seen, shown in the header. */
  position: number | undefined;
  /** The frame log is paused, and how many frames it has not shown since. */
  paused: boolean;
  held: number;
}

export const state: ConsoleState = {
  ws: undefined, wanted: false, retry: undefined, token: '', allTenants: false, statsTimer: undefined, tables: [], table: undefined,
  sub: 0, active: undefined, columns: [], pk: [], rows: new Map(), snapRows: undefined, seq: undefined, connectedAt: undefined,
  position: undefined, paused: false, held: 0,
};

export type ConnectionState = 'idle' | 'connecting' | 'reconnecting' | 'open' | 'closed';

export function showConnection(connection: ConnectionState, text?: string): void {
  ui.state.dataset.state = connection;
  ui.state.textContent = text || connection;
}

export function showError(message: string): void {
  ui.error.textContent = message;
}

/** An error's message, for the page. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function setSeq(seq: number): void {
  state.seq = seq;
  ui.seq.textContent = String(seq);
  notePosition(seq);
}

/** The relay's position is at least every seq it has sent: the header never shows it behind the view. */
export function notePosition(seq: number): void {
  // (a frame is what the relay sent: not a number, it is not a position)
  if (typeof seq !== 'number' || (state.position !== undefined && seq <= state.position)) return;
  state.position = seq;
  ui.position.textContent = String(seq);
}
