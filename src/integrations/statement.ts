// What a statement does to the transaction state of its connection, read from its first words.
// Only the start of the text is looked at; anything unrecognised counts as an ordinary statement.

export type StatementKind =
  /** BEGIN / START TRANSACTION: opens a transaction. */
  | 'begin'
  /** COMMIT / END / ROLLBACK / ABORT / PREPARE TRANSACTION: closes it. */
  | 'end'
  /** COMMIT AND CHAIN / ROLLBACK AND CHAIN: closes it and opens the next one at once. */
  | 'chain'
  /** SAVEPOINT / RELEASE / ROLLBACK TO: inside a transaction, no change of state. */
  | 'savepoint'
  /** Cannot run inside a transaction block (VACUUM, CREATE INDEX CONCURRENTLY, …): left alone. */
  | 'standalone'
  | 'other';

export interface Classified {
  kind: StatementKind;
  /**
   * For begin/chain: where the first statement ends (index of its `;`, or the text's length)
   * when it is plain words only (isolation level, read only, …), so settings can be placed right
   * after it. Undefined when the statement holds anything else (a comment, a quote).
   */
  firstEnd?: number;
}

const LEADING = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/;
const WORDS = /^([a-z]+)(?:\s+([a-z]+))?(?:\s+([a-z]+))?/i;

export function classify(text: string): Classified {
  const start = LEADING.exec(text)![0].length;
  const words = WORDS.exec(text.slice(start));
  if (!words) return { kind: 'other' };
  const [w1, w2 = '', w3 = ''] = [words[1]!.toLowerCase(), words[2]?.toLowerCase(), words[3]?.toLowerCase()];
  const plainFirst = (): number | undefined => {
    const semi = text.indexOf(';', start);
    const end = semi === -1 ? text.length : semi;
    return /^[a-z\s,]*$/i.test(text.slice(start, end)) ? end : undefined;
  };
  const chained = () => /\band\s+chain\b/i.test(text.slice(start, plainFirst() ?? start)) &&
    !/\band\s+no\s+chain\b/i.test(text.slice(start, plainFirst() ?? start));
  switch (w1) {
    case 'begin':
      return { kind: 'begin', firstEnd: plainFirst() };
    case 'start':
      return w2 === 'transaction' ? { kind: 'begin', firstEnd: plainFirst() } : { kind: 'other' };
    case 'savepoint':
    case 'release':
      return { kind: 'savepoint' };
    case 'rollback':
      if (w2 === 'to') return { kind: 'savepoint' };
      if (w2 === 'prepared') return { kind: 'standalone' };
      return chained() ? { kind: 'chain', firstEnd: plainFirst() } : { kind: 'end' };
    case 'commit':
      if (w2 === 'prepared') return { kind: 'standalone' };
      return chained() ? { kind: 'chain', firstEnd: plainFirst() } : { kind: 'end' };
    case 'end':
    case 'abort':
      return chained() ? { kind: 'chain', firstEnd: plainFirst() } : { kind: 'end' };
    case 'prepare':
      return w2 === 'transaction' ? { kind: 'end' } : { kind: 'other' };
    case 'vacuum':
    case 'reindex':
    case 'cluster':
    case 'checkpoint':
    case 'discard':
      return { kind: 'standalone' };
    case 'create':
    case 'drop':
    case 'alter':
      if (['database', 'tablespace', 'subscription', 'system'].includes(w2)) return { kind: 'standalone' };
      if ((w2 === 'index' || (w2 === 'unique' && w3 === 'index')) && /\bconcurrently\b/i.test(text.slice(start, start + 200))) {
        return { kind: 'standalone' };
      }
      return { kind: 'other' };
    default:
      return { kind: 'other' };
  }
}
