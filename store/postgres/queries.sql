-- Every query the PostgreSQL driver runs, by name. Column lists match the
-- scan functions in store/internal/sqlcore; store/sqlite/queries.sql has the
-- same names for SQLite.

-- name: DefinitionInsert
INSERT INTO definitions (id, version, name, source, content_hash, deployed_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, version, name, source, content_hash, deployed_at;

-- name: DefinitionCheckLatest
SELECT 1 FROM definitions WHERE id = $1 GROUP BY id HAVING max(version) = $2;

-- name: DefinitionGet
SELECT id, version, name, source, content_hash, deployed_at
FROM definitions
WHERE id = $1 AND ($2 = 0 OR version = $2)
ORDER BY version DESC
LIMIT 1;

-- name: DefinitionGetByHash
SELECT id, version, name, source, content_hash, deployed_at
FROM definitions
WHERE id = $1 AND content_hash = $2
ORDER BY version
LIMIT 1;

-- name: DefinitionList
SELECT DISTINCT ON (id) id, version, name, source, content_hash, deployed_at
FROM definitions
ORDER BY id, version DESC;

-- name: DefinitionListVersions
SELECT id, version, name, source, content_hash, deployed_at
FROM definitions
WHERE id = $1
ORDER BY version;

-- name: InstanceInsert
INSERT INTO instances (id, definition_id, definition_version, status, input, variables,
    business_key, parent_id, parent_execution_id, idempotency_key, deadline, version, created_at, updated_at, trace_parent)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $13)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent;

-- name: InstanceGet
SELECT id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent
FROM instances
WHERE id = $1;

-- name: InstanceGetByIdempotencyKey
SELECT id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent
FROM instances
WHERE idempotency_key = $1;

-- name: InstanceUpdate
UPDATE instances
SET status = $3, variables = $4, output = $5, error = $6, deadline = $7, updated_at = $8,
    version = version + 1
WHERE id = $1 AND version = $2
RETURNING id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent;

-- name: InstanceCheckVersion
SELECT 1 FROM instances WHERE id = $1 AND version = $2;

-- name: InstanceExists
SELECT 1 FROM instances WHERE id = $1;

-- name: InstanceList
SELECT id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent
FROM instances
WHERE ($1 = '' OR status = $1)
  AND ($2 = '' OR definition_id = $2)
  AND ($3 = '' OR business_key = $3)
  AND ($4 = '' OR parent_id = $4)
  AND ($5 = '' OR id < $5)
  AND ($7 = 0 OR definition_version = $7)
  AND ($8 = '' OR id > $8)
ORDER BY id DESC
LIMIT $6;

-- name: InstanceListByBusinessKey
-- InstanceList with a business key: spelled out so that the planner uses
-- the partial index instances_business_key_idx (it cannot with "$3 = '' OR").
SELECT id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent
FROM instances
WHERE business_key = $3 AND business_key <> ''
  AND ($1 = '' OR status = $1)
  AND ($2 = '' OR definition_id = $2)
  AND ($4 = '' OR parent_id = $4)
  AND ($5 = '' OR id < $5)
  AND ($7 = 0 OR definition_version = $7)
  AND ($8 = '' OR id > $8)
ORDER BY business_key, id DESC
LIMIT $6;

-- name: InstanceListByParent
-- InstanceList of one parent's children, on the partial index
-- instances_parent_idx (for the same reason as InstanceListByBusinessKey).
SELECT id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent
FROM instances
WHERE parent_id = $4 AND parent_id <> ''
  AND ($1 = '' OR status = $1)
  AND ($2 = '' OR definition_id = $2)
  AND ($3 = '' OR business_key = $3)
  AND ($5 = '' OR id < $5)
  AND ($7 = 0 OR definition_version = $7)
  AND ($8 = '' OR id > $8)
ORDER BY id DESC
LIMIT $6;

-- name: InstanceCountByStatus
SELECT definition_id, status, COUNT(*)
FROM instances
GROUP BY definition_id, status
ORDER BY definition_id, status;

-- name: InstanceCountRecent
SELECT
    (SELECT COUNT(*) FROM instances WHERE id > $1),
    (SELECT COUNT(*) FROM instances
     WHERE status IN ('completed', 'failed', 'cancelled', 'timed_out') AND updated_at >= $2);

-- name: ExecutionInsert
INSERT INTO activity_executions (id, instance_id, activity_id, type, status, attempt, input,
    output, error, started_at, finished_at, version, created_at, token)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $13)
RETURNING id, instance_id, activity_id, type, status, attempt, input, output, error,
    started_at, finished_at, version, created_at, token;

-- name: ExecutionGet
SELECT id, instance_id, activity_id, type, status, attempt, input, output, error,
    started_at, finished_at, version, created_at, token
FROM activity_executions
WHERE id = $1;

-- name: ExecutionUpdate
UPDATE activity_executions
SET status = $3, attempt = $4, input = $5, output = $6, error = $7, started_at = $8,
    finished_at = $9, version = version + 1
WHERE id = $1 AND version = $2
RETURNING id, instance_id, activity_id, type, status, attempt, input, output, error,
    started_at, finished_at, version, created_at, token;

-- name: ExecutionExists
SELECT 1 FROM activity_executions WHERE id = $1;

-- name: ExecutionListByInstance
SELECT id, instance_id, activity_id, type, status, attempt, input, output, error,
    started_at, finished_at, version, created_at, token
FROM activity_executions
WHERE instance_id = $1
ORDER BY created_at, id;

-- name: BookmarkInsert
INSERT INTO bookmarks (id, instance_id, execution_id, activity_id, type, wait_key, payload,
    assignee, due_at, version, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10)
RETURNING id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at;

-- name: BookmarkGet
SELECT id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at
FROM bookmarks
WHERE id = $1;

-- name: BookmarkConsume
UPDATE bookmarks
SET consumed_at = $2, consumed_by = $3, consume_key = $4, result = $5, version = version + 1
WHERE id = $1 AND consumed_at IS NULL
RETURNING id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at;

-- name: BookmarkAssign
UPDATE bookmarks
SET assignee = $3, version = version + 1
WHERE id = $1 AND version = $2 AND consumed_at IS NULL
RETURNING id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at;

-- name: BookmarkListOpen
SELECT id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at
FROM bookmarks
WHERE consumed_at IS NULL
  AND ($1 = '' OR instance_id = $1)
  AND ($2 = '' OR type = $2)
  AND ($3 = '' OR wait_key = $3)
  AND ($4 = '' OR assignee = $4)
ORDER BY created_at, id
LIMIT $5;

-- name: BookmarkListDue
SELECT id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at
FROM bookmarks
WHERE consumed_at IS NULL AND due_at IS NOT NULL AND due_at <= $1
ORDER BY due_at, id
LIMIT $2;

-- name: BookmarkNextDue
SELECT min(due_at) FROM bookmarks WHERE consumed_at IS NULL AND due_at IS NOT NULL;

-- name: LogAppend
-- $1 is a JSON array of entries; they get their seq in array order.
INSERT INTO execution_log (instance_id, activity_id, event, at, actor, details, trace_id)
SELECT e->>'instance_id', e->>'activity_id', e->>'event', (e->>'at')::timestamptz, e->>'actor',
    e->'details', e->>'trace_id'
FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, ord)
ORDER BY ord;

-- name: LogList
SELECT seq, instance_id, activity_id, event, at, actor, details, trace_id
FROM execution_log
WHERE instance_id = $1 AND seq > $2
ORDER BY seq
LIMIT $3;

-- name: OutboxInsert
INSERT INTO outbox (id, ordering_key, instance_id, type, part, payload, headers, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING xid::text::bigint, seq, id, ordering_key, instance_id, type, part, payload, headers, occurred_at;

-- name: OutboxInsertBatch
-- $1 is a JSON array of events; they get their seq in array order.
INSERT INTO outbox (id, ordering_key, instance_id, type, part, payload, headers, occurred_at)
SELECT e->>'id', e->>'ordering_key', e->>'instance_id', e->>'type', (e->>'part')::smallint,
    e->'payload', e->'headers', (e->>'occurred_at')::timestamptz
FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, ord)
ORDER BY ord;

-- name: OutboxGet
SELECT xid::text::bigint, seq, id, ordering_key, instance_id, type, part, payload, headers, occurred_at
FROM outbox
WHERE id = $1;

-- name: OutboxTail
-- As EventTail, within one partition.
SELECT xid::text::bigint, seq, id, ordering_key, instance_id, type, part, payload, headers, occurred_at
FROM outbox
WHERE part = $1
  AND (xid, seq) > ($2::text::xid8, $3::bigint)
  AND xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xid, seq
LIMIT $4;

-- name: SinkCursorCreate
-- $2 parts, from position ($3, $4).
INSERT INTO sink_cursors (sink, part, pos_xid, pos_seq, updated_at)
SELECT $1, p, $3, $4, $5 FROM generate_series(0, $2::integer - 1) AS p
ON CONFLICT (sink, part) DO NOTHING;

-- name: SinkCursorRenew
UPDATE sink_cursors SET lease_expires_at = $3, updated_at = $4
WHERE sink = $1 AND owner = $2;

-- name: SinkCursorTake
-- Take up to $5 free or expired cursors; a new lease bumps the fence.
UPDATE sink_cursors SET owner = $2, lease_expires_at = $4, fence = fence + 1, updated_at = $3
WHERE (sink, part) IN (
    SELECT sink, part FROM sink_cursors
    WHERE sink = $1 AND (owner = '' OR lease_expires_at IS NULL OR lease_expires_at <= $3)
    ORDER BY random()
    LIMIT $5
    FOR UPDATE SKIP LOCKED);

-- name: SinkCursorOwned
SELECT sink, part, pos_xid, pos_seq, owner, lease_expires_at, fence, updated_at
FROM sink_cursors WHERE sink = $1 AND owner = $2 ORDER BY part;

-- name: SinkCursorList
SELECT sink, part, pos_xid, pos_seq, owner, lease_expires_at, fence, updated_at
FROM sink_cursors WHERE ($1 = '' OR sink = $1) ORDER BY sink, part;

-- name: SinkCursorAdvance
UPDATE sink_cursors SET pos_xid = $5, pos_seq = $6, updated_at = $7
WHERE sink = $1 AND part = $2 AND owner = $3 AND fence = $4;

-- name: SinkCursorRelease
UPDATE sink_cursors SET owner = '', lease_expires_at = NULL
WHERE sink = $1 AND part = $2 AND owner = $3 AND fence = $4;

-- name: SinkPark
-- $1 is a JSON array of parked events.
INSERT INTO sink_parked (sink, ordering_key, seq, event_id, part, state, attempts, next_attempt_at,
    last_error, history, parked_at, updated_at)
SELECT e->>'sink', e->>'ordering_key', (e->>'seq')::bigint, e->>'event_id', (e->>'part')::integer,
    e->>'state', (e->>'attempts')::integer, (e->>'next_attempt_at')::timestamptz, e->>'last_error',
    e->'history', (e->>'now')::timestamptz, (e->>'now')::timestamptz
FROM jsonb_array_elements($1::jsonb) AS x(e)
ON CONFLICT (sink, ordering_key, seq) DO NOTHING;

-- name: SinkParked
SELECT DISTINCT ordering_key FROM sink_parked
WHERE sink = $1 AND ordering_key IN (SELECT jsonb_array_elements_text($2::jsonb));

-- name: SinkParkedKeys
SELECT DISTINCT ordering_key FROM sink_parked WHERE sink = $1 AND part = $2;

-- name: SinkParkedDue
-- Due retries, and held events with nothing parked ahead of them (orphaned
-- when the commit that removed the one ahead was cut off after it took
-- effect): nothing else would release those.
SELECT p.sink, p.state, p.attempts, p.next_attempt_at, p.last_error, p.history, p.parked_at, p.updated_at,
    o.xid::text::bigint, o.seq, o.id, o.ordering_key, o.instance_id, o.type, o.part, o.payload, o.headers, o.occurred_at
FROM sink_parked p JOIN outbox o ON o.seq = p.seq
WHERE p.sink = $1 AND p.part = $2 AND p.next_attempt_at <= $3
  AND (p.state = 'retry' OR (p.state = 'held' AND NOT EXISTS (
      SELECT 1 FROM sink_parked q WHERE q.sink = p.sink AND q.ordering_key = p.ordering_key AND q.seq < p.seq)))
ORDER BY p.next_attempt_at
LIMIT $4;

-- name: SinkParkedNext
SELECT p.sink, p.state, p.attempts, p.next_attempt_at, p.last_error, p.history, p.parked_at, p.updated_at,
    o.xid::text::bigint, o.seq, o.id, o.ordering_key, o.instance_id, o.type, o.part, o.payload, o.headers, o.occurred_at
FROM sink_parked p JOIN outbox o ON o.seq = p.seq
WHERE p.sink = $1 AND p.ordering_key = $2
ORDER BY p.seq
LIMIT 1;

-- name: SinkParkedUpdate
UPDATE sink_parked
SET state = $4, attempts = $5, next_attempt_at = $6, last_error = $7, history = $8, updated_at = $9
WHERE sink = $1 AND ordering_key = $2 AND seq = $3;

-- name: SinkParkedDelete
DELETE FROM sink_parked WHERE sink = $1 AND ordering_key = $2 AND seq = $3;

-- name: SinkParkedList
-- $3 is a LIKE pattern on the type; $6 (nullable) an occurred-before bound.
SELECT p.sink, p.state, p.attempts, p.next_attempt_at, p.last_error, p.history, p.parked_at, p.updated_at,
    o.xid::text::bigint, o.seq, o.id, o.ordering_key, o.instance_id, o.type, o.part, o.payload, o.headers, o.occurred_at
FROM sink_parked p JOIN outbox o ON o.seq = p.seq
WHERE ($1 = '' OR p.sink = $1) AND ($2 = '' OR p.state = $2) AND o.type LIKE $3 ESCAPE '\'
  AND ($4 = '' OR o.instance_id = $4) AND ($5 = '' OR o.id = $5)
  AND ($6::timestamptz IS NULL OR o.occurred_at < $6)
  AND (p.seq, p.sink) > ($7::bigint, $8::text)
ORDER BY p.seq, p.sink
LIMIT $9;

-- name: SinkParkedReplay
UPDATE sink_parked AS p
SET state = 'retry', attempts = 0, next_attempt_at = $6, updated_at = $6
FROM outbox o
WHERE o.seq = p.seq AND p.state = 'dead'
  AND ($1 = '' OR p.sink = $1) AND o.type LIKE $2 ESCAPE '\'
  AND ($3 = '' OR o.instance_id = $3) AND ($4 = '' OR o.id = $4)
  AND ($5::timestamptz IS NULL OR o.occurred_at < $5);

-- name: SinkStatsCursors
-- Per sink: events after its cursors (counted up to a million a
-- partition) and when the first of them occurred.
SELECT c.sink,
    sum((SELECT count(*) FROM (
        SELECT 1 FROM outbox o
        WHERE o.part = c.part AND (o.xid, o.seq) > (c.pos_xid::text::xid8, c.pos_seq)
        LIMIT 1000000) x))::bigint,
    min((SELECT o.occurred_at FROM outbox o
        WHERE o.part = c.part AND (o.xid, o.seq) > (c.pos_xid::text::xid8, c.pos_seq)
        ORDER BY o.xid, o.seq LIMIT 1))
FROM sink_cursors c
GROUP BY c.sink
ORDER BY c.sink;

-- name: SinkStatsParked
SELECT p.sink,
    count(*) FILTER (WHERE p.state = 'retry'),
    count(*) FILTER (WHERE p.state = 'held'),
    count(*) FILTER (WHERE p.state = 'dead'),
    min(o.occurred_at) FILTER (WHERE p.state <> 'dead')
FROM sink_parked p JOIN outbox o ON o.seq = p.seq
GROUP BY p.sink
ORDER BY p.sink;

-- name: LeaseAcquire
INSERT INTO leases AS l (name, owner, fence, acquired_at, renewed_at, expires_at)
VALUES ($1, $2, 1, $3, $3, $4)
ON CONFLICT (name) DO UPDATE SET
    owner = excluded.owner,
    fence = CASE WHEN l.owner = excluded.owner THEN l.fence ELSE l.fence + 1 END,
    acquired_at = CASE WHEN l.owner = excluded.owner AND l.expires_at > excluded.renewed_at
        THEN l.acquired_at ELSE excluded.acquired_at END,
    renewed_at = excluded.renewed_at,
    expires_at = excluded.expires_at
WHERE l.owner = excluded.owner OR l.expires_at <= excluded.renewed_at
RETURNING name, owner, fence, acquired_at, renewed_at, expires_at;

-- name: LeaseGet
SELECT name, owner, fence, acquired_at, renewed_at, expires_at FROM leases WHERE name = $1;

-- name: LeaseRelease
UPDATE leases SET expires_at = acquired_at WHERE name = $1 AND owner = $2;

-- name: LeaseList
SELECT name, owner, fence, acquired_at, renewed_at, expires_at FROM leases
WHERE starts_with(name, $1) AND expires_at > $2
ORDER BY name;

-- name: ExternalCallInsert
INSERT INTO external_calls (id, instance_id, execution_id, idempotency_key, request, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $6)
RETURNING id, instance_id, execution_id, idempotency_key, status, request, response, attempts,
    last_error, version, created_at, updated_at;

-- name: ExternalCallGet
SELECT id, instance_id, execution_id, idempotency_key, status, request, response, attempts,
    last_error, version, created_at, updated_at
FROM external_calls
WHERE id = $1;

-- name: ExternalCallUpdate
UPDATE external_calls
SET status = $3, response = $4, attempts = $5, last_error = $6, updated_at = $7, version = version + 1
WHERE id = $1 AND version = $2
RETURNING id, instance_id, execution_id, idempotency_key, status, request, response, attempts,
    last_error, version, created_at, updated_at;

-- name: ExternalCallExists
SELECT 1 FROM external_calls WHERE id = $1;

-- name: ExternalCallListUnfinished
SELECT id, instance_id, execution_id, idempotency_key, status, request, response, attempts,
    last_error, version, created_at, updated_at
FROM external_calls
WHERE status IN ('pending', 'unknown') AND updated_at < $1
ORDER BY updated_at, id
LIMIT $2;

-- name: InboxInsert
INSERT INTO inbox (source, message_id, received_at, result)
VALUES ($1, $2, $3, $4)
ON CONFLICT (source, message_id) DO NOTHING
RETURNING source, message_id, received_at, result;

-- name: InboxGet
SELECT source, message_id, received_at, result FROM inbox WHERE source = $1 AND message_id = $2;

-- name: WorkEnqueue
-- At most one item per execution: enqueueing an execution that has one
-- returns no row. No NOTIFY here: it would take a database-wide lock at
-- commit; engines announce commits afterwards (Notify).
INSERT INTO work_items (id, instance_id, execution_id, kind, handler, run_at, created_at,
    attempts, lease_owner, lease_expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (execution_id) DO NOTHING
RETURNING id, instance_id, execution_id, kind, handler, run_at, attempts, lease_owner,
    lease_expires_at, created_at;

-- name: WorkClaim
-- $6 lists the handlers the claimer runs: each is looked up on its own
-- (handler, run_at) index range, so items for other handlers cost nothing.
UPDATE work_items w
SET lease_owner = $1, lease_expires_at = $3, run_at = $3, attempts = w.attempts + 1
FROM (
    SELECT c.id
    FROM jsonb_array_elements_text($6::jsonb) AS h(handler)
    CROSS JOIN LATERAL (
        SELECT id, run_at FROM work_items
        WHERE handler = h.handler AND run_at <= $2 AND ($5 = '' OR kind = $5)
        ORDER BY run_at, id
        LIMIT $4
        FOR UPDATE SKIP LOCKED) c
    ORDER BY c.run_at, c.id
    LIMIT $4
) c
WHERE w.id = c.id
RETURNING w.id, w.instance_id, w.execution_id, w.kind, w.handler, w.run_at, w.attempts,
    w.lease_owner, w.lease_expires_at, w.created_at,
    coalesce((SELECT i.version FROM instances i WHERE i.id = w.instance_id), 0);

-- name: WorkClaimAny
UPDATE work_items w
SET lease_owner = $1, lease_expires_at = $3, run_at = $3, attempts = w.attempts + 1
FROM (
    SELECT id FROM work_items
    WHERE run_at <= $2 AND ($5 = '' OR kind = $5)
    ORDER BY run_at, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
) c
WHERE w.id = c.id
RETURNING w.id, w.instance_id, w.execution_id, w.kind, w.handler, w.run_at, w.attempts,
    w.lease_owner, w.lease_expires_at, w.created_at,
    coalesce((SELECT i.version FROM instances i WHERE i.id = w.instance_id), 0);

-- name: WorkExtend
UPDATE work_items
SET lease_expires_at = $3, run_at = $3
WHERE id = $1 AND lease_owner = $2
RETURNING id, instance_id, execution_id, kind, handler, run_at, attempts, lease_owner,
    lease_expires_at, created_at;

-- name: WorkComplete
DELETE FROM work_items WHERE id = $1 AND lease_owner = $2;

-- name: WorkRetry
UPDATE work_items
SET lease_owner = '', lease_expires_at = NULL, run_at = $3
WHERE id = $1 AND lease_owner = $2
RETURNING id, instance_id, execution_id, kind, handler, run_at, attempts, lease_owner,
    lease_expires_at, created_at;

-- name: WorkGet
SELECT id, instance_id, execution_id, kind, handler, run_at, attempts, lease_owner,
    lease_expires_at, created_at
FROM work_items
WHERE id = $1;

-- name: WorkExists
SELECT 1 FROM work_items WHERE id = $1;

-- name: WorkNextRunAt
-- $1 lists handlers (NULL: all).
SELECT CASE WHEN $1::jsonb IS NULL THEN (SELECT min(run_at) FROM work_items)
    ELSE (SELECT min(n.run_at)
          FROM jsonb_array_elements_text($1::jsonb) AS h(handler)
          CROSS JOIN LATERAL (
              SELECT run_at FROM work_items WHERE handler = h.handler ORDER BY run_at LIMIT 1) n)
    END;

-- name: WorkRelease
UPDATE work_items
SET lease_owner = '', lease_expires_at = NULL, run_at = $3, attempts = greatest(attempts - 1, 0)
WHERE id = $1 AND lease_owner = $2;

-- name: WorkDeleteByExecution
DELETE FROM work_items WHERE execution_id = $1;

-- name: MessageInsert
INSERT INTO messages (id, name, correlation, payload, source, message_id, received_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id, name, correlation, payload, source, message_id, received_at, expires_at,
    consumed_at, consumed_by;

-- name: MessageTake
UPDATE messages
SET consumed_at = $4, consumed_by = $3
WHERE id = (
    SELECT id FROM messages
    WHERE name = $1 AND correlation = $2 AND consumed_at IS NULL AND expires_at > $4
    ORDER BY received_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED)
RETURNING id, name, correlation, payload, source, message_id, received_at, expires_at,
    consumed_at, consumed_by;

-- name: MessageLock
-- Serialises a message's delivery with the opening of the receive it
-- correlates to, until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('waymark.message' || chr(31) || $1 || chr(31) || $2, 0));

-- name: ClockNow
SELECT clock_timestamp();

-- name: WakeChannel
SELECT 'waymark_wake_' || md5(current_schema());

-- name: Notify
-- One autocommit statement, outside any step transaction.
SELECT pg_notify('waymark_wake_' || md5(current_schema()), k) FROM unnest($1::text[]) AS k;

-- name: TaskList
SELECT id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at
FROM bookmarks
WHERE type = 'UserAction'
  AND ($1 = '' OR instance_id = $1)
  AND ($2 = '' OR assignee = $2)
  AND ($3 = '' OR payload->'candidateRoles' @> to_jsonb($3::text))
  AND ($4 = '' OR ($4 = 'open') = (consumed_at IS NULL))
  AND ($5 = '' OR id > $5)
ORDER BY id
LIMIT $6;

-- name: EventTail
-- Events whose transaction is below the snapshot's xmin have committed (or
-- rolled back) for good, so reading in (xid, seq) order up to that horizon
-- never passes an event that commits later: a transaction that took a
-- lower seq but commits after a higher one is still running, hence at or
-- above the horizon, hence not yet read past.
SELECT xid::text::bigint, seq, id, instance_id, type, payload, occurred_at
FROM outbox
WHERE (xid, seq) > ($1::text::xid8, $2::bigint)
  AND xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xid, seq
LIMIT $3;

-- name: EventHead
-- Every event below the horizon is final; the stream's "now" is just below it.
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1, 9223372036854775807::bigint;

-- name: BreakerGet
SELECT name, state, failures, opened_at, updated_at FROM circuit_breakers WHERE name = $1;

-- name: BreakerList
SELECT name, state, failures, opened_at, updated_at FROM circuit_breakers ORDER BY name;

-- name: BreakerRecord
-- $2 success, $3 threshold, $4 now. A failure opens the breaker at the
-- threshold, or at once when it was half-open (the probe failed).
INSERT INTO circuit_breakers AS b (name, state, failures, opened_at, updated_at)
VALUES ($1,
    CASE WHEN $2::boolean OR $3::integer > 1 THEN 'closed' ELSE 'open' END,
    CASE WHEN $2::boolean THEN 0 ELSE 1 END,
    CASE WHEN $2::boolean OR $3::integer > 1 THEN NULL ELSE $4::timestamptz END,
    $4::timestamptz)
ON CONFLICT (name) DO UPDATE SET
    state = CASE WHEN $2::boolean THEN 'closed'
                 WHEN b.state = 'half_open' OR b.failures + 1 >= $3::integer THEN 'open'
                 ELSE b.state END,
    failures = CASE WHEN $2::boolean THEN 0 ELSE b.failures + 1 END,
    opened_at = CASE WHEN $2::boolean THEN NULL
                     WHEN b.state = 'half_open' OR (b.state = 'closed' AND b.failures + 1 >= $3::integer) THEN $4::timestamptz
                     ELSE b.opened_at END,
    updated_at = $4::timestamptz
RETURNING name, state, failures, opened_at, updated_at;

-- name: BreakerProbe
UPDATE circuit_breakers SET state = 'half_open', updated_at = $2
WHERE name = $1 AND ((state = 'open' AND opened_at <= $3) OR (state = 'half_open' AND updated_at <= $3));

-- name: BreakerReset
UPDATE circuit_breakers SET state = 'closed', failures = 0, opened_at = NULL, updated_at = $2
WHERE name = $1
RETURNING name, state, failures, opened_at, updated_at;

-- Retention (package retention): small batches, oldest first. The
-- instance batch is locked and skips rows a step holds. The batch's ids ($1
-- of the InstancePurge* deletes) and the excluded definitions are text[]
-- the planner sees, so that it looks rows up by index instead of scanning
-- (and reads the finished-instance index in order instead of sorting every
-- finished instance).

-- name: InstancePurgeSelect
SELECT i.id, i.definition_id, i.status FROM instances i
WHERE i.status IN ('completed', 'failed', 'cancelled', 'timed_out')
  AND i.updated_at < $1
  AND NOT (i.definition_id = ANY ($2::text[]))
  AND NOT EXISTS (SELECT 1 FROM instances c
      WHERE c.parent_id = i.id AND c.parent_id <> '' AND c.status NOT IN ('completed', 'failed', 'cancelled', 'timed_out'))
ORDER BY i.updated_at
LIMIT $3
FOR UPDATE OF i SKIP LOCKED;

-- name: InstancePurgeSelectDefinition
SELECT i.id, i.definition_id, i.status FROM instances i
WHERE i.status IN ('completed', 'failed', 'cancelled', 'timed_out')
  AND i.updated_at < $1
  AND i.definition_id = $2
  AND NOT EXISTS (SELECT 1 FROM instances c
      WHERE c.parent_id = i.id AND c.parent_id <> '' AND c.status NOT IN ('completed', 'failed', 'cancelled', 'timed_out'))
ORDER BY i.updated_at
LIMIT $3
FOR UPDATE OF i SKIP LOCKED;

-- name: InstancePurgeMessages
DELETE FROM messages
WHERE consumed_by IN (SELECT e.id FROM activity_executions e
    WHERE e.instance_id = ANY ($1::text[]));

-- name: InstancePurgeWork
DELETE FROM work_items WHERE instance_id = ANY ($1::text[]);

-- name: InstancePurgeCalls
DELETE FROM external_calls WHERE instance_id = ANY ($1::text[]);

-- name: InstancePurgeBookmarks
DELETE FROM bookmarks WHERE instance_id = ANY ($1::text[]);

-- name: InstancePurgeExecutions
DELETE FROM activity_executions WHERE instance_id = ANY ($1::text[]);

-- name: InstancePurgeLog
DELETE FROM execution_log WHERE instance_id = ANY ($1::text[]);

-- name: InstancePurgeInstances
DELETE FROM instances WHERE id = ANY ($1::text[]);

-- name: OutboxPurge
-- An event goes once every active cursor of its partition (updated after
-- the cutoff) is at or past it and no sink has it parked.
DELETE FROM outbox WHERE seq IN (
    SELECT o.seq FROM outbox o
    WHERE o.occurred_at < $1
      AND NOT EXISTS (SELECT 1 FROM sink_cursors c
          WHERE c.part = o.part AND c.updated_at > $1
            AND (c.pos_xid::text::xid8, c.pos_seq) < (o.xid, o.seq))
      AND NOT EXISTS (SELECT 1 FROM sink_parked p WHERE p.event_id = o.id)
    ORDER BY o.occurred_at
    LIMIT $2);

-- name: InboxPurge
DELETE FROM inbox WHERE (source, message_id) IN (
    SELECT source, message_id FROM inbox WHERE received_at < $1 ORDER BY received_at LIMIT $2);

-- name: MessagePurge
DELETE FROM messages WHERE id IN (
    SELECT id FROM messages WHERE consumed_at IS NULL AND expires_at < $1 ORDER BY expires_at LIMIT $2);

-- name: InstanceCountsAdd
INSERT INTO instance_counts AS c (definition_id, status, shard, n)
VALUES ($1, $2, $3, $4)
ON CONFLICT (definition_id, status, shard) DO UPDATE SET n = c.n + excluded.n;

-- name: InstanceCounts
SELECT definition_id, status, SUM(n) AS total
FROM instance_counts
GROUP BY definition_id, status
HAVING SUM(n) <> 0
ORDER BY definition_id, status;

-- name: InstanceListIdle
SELECT i.id, i.definition_id, i.definition_version, i.status, i.input, i.variables, i.output, i.error,
    i.business_key, i.parent_id, i.parent_execution_id, COALESCE(i.idempotency_key, ''), i.deadline, i.version,
    i.created_at, i.updated_at, i.trace_parent
FROM instances i
WHERE i.status = $1 AND i.updated_at < $2
ORDER BY i.updated_at
LIMIT $3;

-- name: ExecutionListRetrying
SELECT e.instance_id, i.definition_id, e.activity_id, e.id, e.attempt, e.error, i.updated_at
FROM activity_executions e
JOIN instances i ON i.id = e.instance_id
WHERE e.status = 'scheduled' AND e.error IS NOT NULL
  AND i.status IN ('running', 'waiting', 'compensating')
ORDER BY i.updated_at
LIMIT $1;

-- name: UserTaskStats
SELECT count(*), min(created_at)
FROM bookmarks
WHERE type = $1 AND consumed_at IS NULL;


-- name: AlertStateList
SELECT name, state, since, value, updated_at FROM alert_states ORDER BY name;

-- name: AlertStatePut
INSERT INTO alert_states AS a (name, state, since, value, updated_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO UPDATE SET
    state = excluded.state, since = excluded.since, value = excluded.value, updated_at = excluded.updated_at;
