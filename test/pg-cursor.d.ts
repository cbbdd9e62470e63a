// pg-cursor ships no types; the tests use read() and close() only.
declare module 'pg-cursor';
