// Forwarding the event stream to a broker: NATS JetStream. Depends on src/events, never the reverse.
export { forwardToNats } from './forward';
export { entrySubject, escapeSubjectToken, unescapeSubjectToken } from './subject';
