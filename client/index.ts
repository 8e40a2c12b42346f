// pgrelay/client: the wire protocol types and close codes (the connection and subscriptions arrive with the client issue).
export * from './protocol.js';
export { CloseCode, fatalCloseCodes, type CloseCodeName } from './codes.js';
