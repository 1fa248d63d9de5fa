-- Queries only the PostgreSQL driver has: the execution log's monthly
-- partitions (see migrations/00002_log_partitions.sql). They are not part of
-- the store.Store seam, so they live apart from queries.sql, whose names both
-- drivers share.

-- name: LogPartitionsEnsure
SELECT waymark_create_log_partitions($2::integer, $1::timestamptz);

-- name: LogPartitionsDrop
SELECT waymark_drop_log_partitions($1::timestamptz);
