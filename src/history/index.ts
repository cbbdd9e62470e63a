// Reading the audit trail: queries, display, time travel, revert, manual events, retention, reports.
export { history, allHistory, getForObject, getForObjects, getEntry, buildHistoryQuery, buildWindowQuery } from './query';
export { searchHistory } from './search';
export { describeEntry, describeEntries } from './display';
export { stateAt, replay, isUnknownState } from './timetravel';
export { baseline } from './baseline';
export { revert } from './revert';
export { logEvent } from './events';
export { flush } from './flush';
export { report } from './report';
export { parseInstant } from './common';
