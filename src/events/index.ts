// Post-log events: NOTIFY wake-ups, durable cursors, hook delivery at least once.
export { subscribe } from './subscribe';
