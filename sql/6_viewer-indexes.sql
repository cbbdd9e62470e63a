-- pg-auditlog audit schema: an index for the viewer's table filter.
--
-- "Newest entries of one table" (the viewer's ?table=, history({ table })) is ORDER BY id DESC
-- with table_name = … . log_entry_object_idx (table_name, object_pk, id) finds the table's
-- entries but not in id order, and walking the primary key only works while the table is
-- written often: a table that was busy last year and quiet since makes that walk read every
-- newer entry (millions). This index answers it by walking one table's ids from the newest.
-- Every other viewer filter already has its index (actor, cid, txid, BRIN(ts), the object).
CREATE INDEX log_entry_table_idx ON log_entry (table_name, id);
