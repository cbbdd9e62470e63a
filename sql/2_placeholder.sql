-- PLACEHOLDER, not for release: migration 2 belongs to another branch (security). It exists
-- here only because postgres-migrations refuses non-consecutive ids (1, 3). Delete this file
-- when merging that branch's sql/2_*.sql.
SELECT 1;
