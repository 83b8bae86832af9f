-- Quick manual checks for one database: run on source and target and compare by eye
-- (psql -X -f migration/checks.sql "$URL"). migrate:verify is the proof; these help to look.
\pset pager off
SELECT current_setting('server_version') AS server, pg_encoding_to_char(encoding) AS encoding, datcollate
FROM pg_database WHERE datname = current_database();
SELECT extname, extversion FROM pg_extension ORDER BY 1;
-- Exact row counts per user table (slow on big tables; verify counts inside its checksums).
SELECT format('%I.%I', schemaname, relname) AS table_name,
       (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', schemaname, relname), false, true, '')))[1]::text::bigint AS rows
FROM pg_stat_user_tables ORDER BY 1;
-- Sequences and their next values.
SELECT schemaname, sequencename, last_value, increment_by FROM pg_sequences ORDER BY 1, 2;
-- Invalid indexes (an interrupted restore can leave some).
SELECT indexrelid::regclass AS invalid_index FROM pg_index WHERE NOT indisvalid;
