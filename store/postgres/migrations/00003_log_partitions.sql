-- Waymark schema v3 for PostgreSQL: execution log partitions that keep up
-- with time. v1 made the coming months' partitions once, when it migrated;
-- after that, rows landed in the default partition, and creating their
-- month's partition then failed because the default held rows of its range.
--
-- waymark_create_log_partitions(months_ahead, from_time) now runs again and
-- again (the engine calls it hourly, see postgres.Store.LogPartitionsEnsure).
-- It makes the partitions of from_time's month and the months_ahead months
-- after it, and of any earlier month that has rows in the default partition;
-- rows of such a month that sit in the default partition move into it.
-- waymark_drop_log_partitions(older_than) drops the partitions whose months
-- ended by older_than, for retention.

-- +goose Up
DROP FUNCTION waymark_create_log_partitions(integer);

-- +goose StatementBegin
CREATE FUNCTION waymark_create_log_partitions(months_ahead integer, from_time timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    schema_name text      := current_schema();
    parent      text      := format('%I.execution_log', current_schema());
    deflt       text      := format('%I.execution_log_default', current_schema());
    first_month timestamp := date_trunc('month', from_time AT TIME ZONE 'UTC');
    month_start timestamp;
    lo          timestamptz;
    hi          timestamptz;
    part        text;
    locked      boolean   := false;
    created     integer   := 0;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 THEN
        RAISE EXCEPTION 'waymark_create_log_partitions: months_ahead % must not be negative', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One caller at a time per schema: the others wait here, then find the
    -- partitions made.
    PERFORM pg_advisory_xact_lock(hashtext('waymark_log_partitions'), parent::regclass::oid::integer);
    FOR month_start IN
        SELECT generate_series(first_month, first_month + make_interval(months => months_ahead), interval '1 month')
        UNION
        SELECT DISTINCT date_trunc('month', d.at AT TIME ZONE 'UTC')
        FROM execution_log_default d
        WHERE d.at < first_month AT TIME ZONE 'UTC'
        ORDER BY 1
    LOOP
        part := 'execution_log_' || to_char(month_start, 'YYYYMM');
        CONTINUE WHEN to_regclass(format('%I.%I', schema_name, part)) IS NOT NULL;
        IF NOT locked THEN
            -- Writers and readers of the log lock the parent first and
            -- then a partition: take the parent the same way, so that no
            -- row reaches the default partition while this one moves its
            -- month's rows out, and nobody deadlocks with us.
            EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', parent);
            locked := true;
        END IF;
        lo := month_start AT TIME ZONE 'UTC';
        hi := (month_start + interval '1 month') AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING ALL)', schema_name, part, parent);
        EXECUTE format('WITH moved AS (DELETE FROM %s WHERE at >= $1 AND at < $2 RETURNING *) '
            'INSERT INTO %I.%I SELECT * FROM moved', deflt, schema_name, part) USING lo, hi;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
            parent, schema_name, part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION waymark_drop_log_partitions(older_than timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    parent  text := format('%I.execution_log', current_schema());
    part    regclass;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('waymark_log_partitions'), parent::regclass::oid::integer);
    FOR part IN
        SELECT c.oid::regclass
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass
          AND substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz <= older_than
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %s', part);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;
-- +goose StatementEnd

-- Partitions for the months missed since v1 ran, and their rows out of the
-- default partition.
SELECT waymark_create_log_partitions(3);

-- +goose Down
DROP FUNCTION waymark_drop_log_partitions(timestamptz);
DROP FUNCTION waymark_create_log_partitions(integer, timestamptz);

-- +goose StatementBegin
CREATE FUNCTION waymark_create_log_partitions(months_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    month_start date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    part        text;
    created     integer := 0;
BEGIN
    FOR i IN 0..months_ahead LOOP
        part := 'execution_log_' || to_char(month_start, 'YYYYMM');
        IF to_regclass(format('%I.%I', current_schema(), part)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I.%I PARTITION OF %I.execution_log FOR VALUES FROM (%L) TO (%L)',
                current_schema(), part, current_schema(),
                month_start::timestamp AT TIME ZONE 'UTC',
                (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
        month_start := (month_start + interval '1 month')::date;
    END LOOP;
    RETURN created;
END
$$;
-- +goose StatementEnd
