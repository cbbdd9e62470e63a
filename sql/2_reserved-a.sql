-- Placeholder: migration 2 belongs to another branch (see the lead's merge notes).
-- It exists only because postgres-migrations requires consecutive ids. Delete on merge.
SELECT 1;
