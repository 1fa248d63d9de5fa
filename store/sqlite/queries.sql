-- Every query the SQLite driver runs, by name. Column lists match the scan
-- functions in store/internal/sqlcore; store/postgres/queries.sql has the
-- same names for PostgreSQL. Times are integer Unix microseconds (UTC).
-- SQLite has one writer at a time, so claims need no row locks.

-- name: DefinitionInsert
INSERT INTO definitions (id, version, name, source, content_hash, deployed_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
RETURNING id, version, name, source, content_hash, deployed_at;

-- name: DefinitionCheckLatest
SELECT 1 FROM definitions WHERE id = ?1 GROUP BY id HAVING max(version) = ?2;

-- name: DefinitionGet
SELECT id, version, name, source, content_hash, deployed_at
FROM definitions
WHERE id = ?1 AND (?2 = 0 OR version = ?2)
ORDER BY version DESC
LIMIT 1;

-- name: DefinitionGetByHash
SELECT id, version, name, source, content_hash, deployed_at
FROM definitions
WHERE id = ?1 AND content_hash = ?2
ORDER BY version
LIMIT 1;

-- name: DefinitionList
SELECT id, version, name, source, content_hash, deployed_at
FROM definitions d
WHERE version = (SELECT max(version) FROM definitions WHERE id = d.id)
ORDER BY id;

-- name: DefinitionListVersions
SELECT id, version, name, source, content_hash, deployed_at
FROM definitions
WHERE id = ?1
ORDER BY version;

-- name: InstanceInsert
INSERT INTO instances (id, definition_id, definition_version, status, input, variables,
    business_key, parent_id, parent_execution_id, idempotency_key, deadline, version, created_at, updated_at, trace_parent)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1, ?12, ?12, ?13)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent;

-- name: InstanceGet
SELECT id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent
FROM instances
WHERE id = ?1;

-- name: InstanceGetByIdempotencyKey
SELECT id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent
FROM instances
WHERE idempotency_key = ?1;

-- name: InstanceUpdate
UPDATE instances
SET status = ?3, variables = ?4, output = ?5, error = ?6, deadline = ?7, updated_at = ?8,
    version = version + 1
WHERE id = ?1 AND version = ?2
RETURNING id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent;

-- name: InstanceCheckVersion
SELECT 1 FROM instances WHERE id = ?1 AND version = ?2;

-- name: InstanceExists
SELECT 1 FROM instances WHERE id = ?1;

-- name: InstanceList
SELECT id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent
FROM instances
WHERE (?1 = '' OR status = ?1)
  AND (?2 = '' OR definition_id = ?2)
  AND (?3 = '' OR business_key = ?3)
  AND (?4 = '' OR parent_id = ?4)
  AND (?5 = '' OR id < ?5)
  AND (?7 = 0 OR definition_version = ?7)
  AND (?8 = '' OR id > ?8)
ORDER BY id DESC
LIMIT ?6;

-- name: InstanceListByBusinessKey
-- InstanceList with a business key: spelled out so that the planner uses
-- the partial index instances_business_key_idx (it cannot with "?3 = '' OR").
SELECT id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent
FROM instances
WHERE business_key = ?3 AND business_key <> ''
  AND (?1 = '' OR status = ?1)
  AND (?2 = '' OR definition_id = ?2)
  AND (?4 = '' OR parent_id = ?4)
  AND (?5 = '' OR id < ?5)
  AND (?7 = 0 OR definition_version = ?7)
  AND (?8 = '' OR id > ?8)
ORDER BY business_key, id DESC
LIMIT ?6;

-- name: InstanceListByParent
-- InstanceList of one parent's children, on the partial index
-- instances_parent_idx (for the same reason as InstanceListByBusinessKey).
SELECT id, definition_id, definition_version, status, input, variables, output, error,
    business_key, parent_id, parent_execution_id, COALESCE(idempotency_key, ''), deadline, version,
    created_at, updated_at, trace_parent
FROM instances
WHERE parent_id = ?4 AND parent_id <> ''
  AND (?1 = '' OR status = ?1)
  AND (?2 = '' OR definition_id = ?2)
  AND (?3 = '' OR business_key = ?3)
  AND (?5 = '' OR id < ?5)
  AND (?7 = 0 OR definition_version = ?7)
  AND (?8 = '' OR id > ?8)
ORDER BY id DESC
LIMIT ?6;

-- name: InstanceCountByStatus
SELECT definition_id, status, COUNT(*)
FROM instances
GROUP BY definition_id, status
ORDER BY definition_id, status;

-- name: InstanceCountRecent
SELECT
    (SELECT COUNT(*) FROM instances WHERE id > ?1),
    (SELECT COUNT(*) FROM instances
     WHERE status IN ('completed', 'failed', 'cancelled', 'timed_out') AND updated_at >= ?2);

-- name: ExecutionInsert
INSERT INTO activity_executions (id, instance_id, activity_id, type, status, attempt, input,
    output, error, started_at, finished_at, version, created_at, token)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1, ?12, ?13)
RETURNING id, instance_id, activity_id, type, status, attempt, input, output, error,
    started_at, finished_at, version, created_at, token;

-- name: ExecutionGet
SELECT id, instance_id, activity_id, type, status, attempt, input, output, error,
    started_at, finished_at, version, created_at, token
FROM activity_executions
WHERE id = ?1;

-- name: ExecutionUpdate
UPDATE activity_executions
SET status = ?3, attempt = ?4, input = ?5, output = ?6, error = ?7, started_at = ?8,
    finished_at = ?9, version = version + 1
WHERE id = ?1 AND version = ?2
RETURNING id, instance_id, activity_id, type, status, attempt, input, output, error,
    started_at, finished_at, version, created_at, token;

-- name: ExecutionExists
SELECT 1 FROM activity_executions WHERE id = ?1;

-- name: ExecutionListByInstance
SELECT id, instance_id, activity_id, type, status, attempt, input, output, error,
    started_at, finished_at, version, created_at, token
FROM activity_executions
WHERE instance_id = ?1
ORDER BY created_at, id;

-- name: BookmarkInsert
INSERT INTO bookmarks (id, instance_id, execution_id, activity_id, type, wait_key, payload,
    assignee, due_at, version, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10)
RETURNING id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at;

-- name: BookmarkGet
SELECT id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at
FROM bookmarks
WHERE id = ?1;

-- name: BookmarkConsume
UPDATE bookmarks
SET consumed_at = ?2, consumed_by = ?3, consume_key = ?4, result = ?5, version = version + 1
WHERE id = ?1 AND consumed_at IS NULL
RETURNING id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at;

-- name: BookmarkAssign
UPDATE bookmarks
SET assignee = ?3, version = version + 1
WHERE id = ?1 AND version = ?2 AND consumed_at IS NULL
RETURNING id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at;

-- name: BookmarkListOpen
SELECT id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at
FROM bookmarks
WHERE consumed_at IS NULL
  AND (?1 = '' OR instance_id = ?1)
  AND (?2 = '' OR type = ?2)
  AND (?3 = '' OR wait_key = ?3)
  AND (?4 = '' OR assignee = ?4)
ORDER BY created_at, id
LIMIT ?5;

-- name: BookmarkListDue
SELECT id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at
FROM bookmarks
WHERE consumed_at IS NULL AND due_at IS NOT NULL AND due_at <= ?1
ORDER BY due_at, id
LIMIT ?2;

-- name: BookmarkNextDue
SELECT min(due_at) FROM bookmarks WHERE consumed_at IS NULL AND due_at IS NOT NULL;

-- name: LogAppend
-- ?1 is a JSON array of entries; they get their seq in array order.
INSERT INTO execution_log (instance_id, activity_id, event, at, actor, details, trace_id)
SELECT json_extract(value, '$.instance_id'), json_extract(value, '$.activity_id'),
    json_extract(value, '$.event'), json_extract(value, '$.at'), json_extract(value, '$.actor'),
    value -> '$.details', json_extract(value, '$.trace_id')
FROM json_each(?1)
ORDER BY key;

-- name: LogList
SELECT seq, instance_id, activity_id, event, at, actor, details, trace_id
FROM execution_log
WHERE instance_id = ?1 AND seq > ?2
ORDER BY seq
LIMIT ?3;

-- name: OutboxInsert
INSERT INTO outbox (id, ordering_key, instance_id, type, part, payload, headers, occurred_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
RETURNING 0, seq, id, ordering_key, instance_id, type, part, payload, headers, occurred_at;

-- name: OutboxInsertBatch
-- ?1 is a JSON array of events; they get their seq in array order.
INSERT INTO outbox (id, ordering_key, instance_id, type, part, payload, headers, occurred_at)
SELECT json_extract(value, '$.id'), json_extract(value, '$.ordering_key'),
    json_extract(value, '$.instance_id'), json_extract(value, '$.type'), json_extract(value, '$.part'),
    value -> '$.payload', value -> '$.headers', json_extract(value, '$.occurred_at')
FROM json_each(?1)
ORDER BY key;

-- name: OutboxGet
SELECT 0, seq, id, ordering_key, instance_id, type, part, payload, headers, occurred_at
FROM outbox
WHERE id = ?1;

-- name: OutboxTail
-- One writer at a time: seq order is commit order.
SELECT 0, seq, id, ordering_key, instance_id, type, part, payload, headers, occurred_at
FROM outbox
WHERE part = ?1 AND ?2 = ?2 AND seq > ?3
ORDER BY seq
LIMIT ?4;

-- name: SinkCursorCreate
INSERT INTO sink_cursors (sink, part, pos_xid, pos_seq, updated_at)
WITH RECURSIVE p(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM p WHERE n + 1 < ?2)
SELECT ?1, n, ?3, ?4, ?5 FROM p WHERE true
ON CONFLICT (sink, part) DO NOTHING;

-- name: SinkCursorRenew
UPDATE sink_cursors SET lease_expires_at = ?3, updated_at = ?4
WHERE sink = ?1 AND owner = ?2;

-- name: SinkCursorTake
UPDATE sink_cursors SET owner = ?2, lease_expires_at = ?4, fence = fence + 1, updated_at = ?3
WHERE (sink, part) IN (
    SELECT sink, part FROM sink_cursors
    WHERE sink = ?1 AND (owner = '' OR lease_expires_at IS NULL OR lease_expires_at <= ?3)
    ORDER BY random()
    LIMIT ?5);

-- name: SinkCursorOwned
SELECT sink, part, pos_xid, pos_seq, owner, lease_expires_at, fence, updated_at
FROM sink_cursors WHERE sink = ?1 AND owner = ?2 ORDER BY part;

-- name: SinkCursorList
SELECT sink, part, pos_xid, pos_seq, owner, lease_expires_at, fence, updated_at
FROM sink_cursors WHERE (?1 = '' OR sink = ?1) ORDER BY sink, part;

-- name: SinkCursorAdvance
UPDATE sink_cursors SET pos_xid = ?5, pos_seq = ?6, updated_at = ?7
WHERE sink = ?1 AND part = ?2 AND owner = ?3 AND fence = ?4;

-- name: SinkCursorRelease
UPDATE sink_cursors SET owner = '', lease_expires_at = NULL
WHERE sink = ?1 AND part = ?2 AND owner = ?3 AND fence = ?4;

-- name: SinkPark
INSERT INTO sink_parked (sink, ordering_key, seq, event_id, part, state, attempts, next_attempt_at,
    last_error, history, parked_at, updated_at)
SELECT json_extract(value, '$.sink'), json_extract(value, '$.ordering_key'), json_extract(value, '$.seq'),
    json_extract(value, '$.event_id'), json_extract(value, '$.part'), json_extract(value, '$.state'),
    json_extract(value, '$.attempts'), json_extract(value, '$.next_attempt_at'),
    json_extract(value, '$.last_error'), value -> '$.history',
    json_extract(value, '$.now'), json_extract(value, '$.now')
FROM json_each(?1) WHERE true
ON CONFLICT (sink, ordering_key, seq) DO NOTHING;

-- name: SinkParked
SELECT DISTINCT ordering_key FROM sink_parked
WHERE sink = ?1 AND ordering_key IN (SELECT value FROM json_each(?2));

-- name: SinkParkedKeys
SELECT DISTINCT ordering_key FROM sink_parked WHERE sink = ?1 AND part = ?2;

-- name: SinkParkedDue
-- Due retries, and held events with nothing parked ahead of them (orphaned
-- when the commit that removed the one ahead was cut off after it took
-- effect): nothing else would release those.
SELECT p.sink, p.state, p.attempts, p.next_attempt_at, p.last_error, p.history, p.parked_at, p.updated_at,
    0, o.seq, o.id, o.ordering_key, o.instance_id, o.type, o.part, o.payload, o.headers, o.occurred_at
FROM sink_parked p JOIN outbox o ON o.seq = p.seq
WHERE p.sink = ?1 AND p.part = ?2 AND p.next_attempt_at <= ?3
  AND (p.state = 'retry' OR (p.state = 'held' AND NOT EXISTS (
      SELECT 1 FROM sink_parked q WHERE q.sink = p.sink AND q.ordering_key = p.ordering_key AND q.seq < p.seq)))
ORDER BY p.next_attempt_at
LIMIT ?4;

-- name: SinkParkedNext
SELECT p.sink, p.state, p.attempts, p.next_attempt_at, p.last_error, p.history, p.parked_at, p.updated_at,
    0, o.seq, o.id, o.ordering_key, o.instance_id, o.type, o.part, o.payload, o.headers, o.occurred_at
FROM sink_parked p JOIN outbox o ON o.seq = p.seq
WHERE p.sink = ?1 AND p.ordering_key = ?2
ORDER BY p.seq
LIMIT 1;

-- name: SinkParkedUpdate
UPDATE sink_parked
SET state = ?4, attempts = ?5, next_attempt_at = ?6, last_error = ?7, history = ?8, updated_at = ?9
WHERE sink = ?1 AND ordering_key = ?2 AND seq = ?3;

-- name: SinkParkedDelete
DELETE FROM sink_parked WHERE sink = ?1 AND ordering_key = ?2 AND seq = ?3;

-- name: SinkParkedList
SELECT p.sink, p.state, p.attempts, p.next_attempt_at, p.last_error, p.history, p.parked_at, p.updated_at,
    0, o.seq, o.id, o.ordering_key, o.instance_id, o.type, o.part, o.payload, o.headers, o.occurred_at
FROM sink_parked p JOIN outbox o ON o.seq = p.seq
WHERE (?1 = '' OR p.sink = ?1) AND (?2 = '' OR p.state = ?2) AND o.type LIKE ?3 ESCAPE '\'
  AND (?4 = '' OR o.instance_id = ?4) AND (?5 = '' OR o.id = ?5)
  AND (?6 IS NULL OR o.occurred_at < ?6)
  AND (p.seq > ?7 OR (p.seq = ?7 AND p.sink > ?8))
ORDER BY p.seq, p.sink
LIMIT ?9;

-- name: SinkParkedReplay
UPDATE sink_parked
SET state = 'retry', attempts = 0, next_attempt_at = ?6, updated_at = ?6
WHERE state = 'dead' AND (?1 = '' OR sink = ?1)
  AND seq IN (
    SELECT o.seq FROM outbox o
    WHERE o.type LIKE ?2 ESCAPE '\' AND (?3 = '' OR o.instance_id = ?3) AND (?4 = '' OR o.id = ?4)
      AND (?5 IS NULL OR o.occurred_at < ?5));

-- name: SinkStatsCursors
SELECT c.sink,
    sum((SELECT count(*) FROM (
        SELECT 1 FROM outbox o WHERE o.part = c.part AND o.seq > c.pos_seq LIMIT 1000000))),
    min((SELECT o.occurred_at FROM outbox o WHERE o.part = c.part AND o.seq > c.pos_seq
        ORDER BY o.seq LIMIT 1))
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
VALUES (?1, ?2, 1, ?3, ?3, ?4)
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
SELECT name, owner, fence, acquired_at, renewed_at, expires_at FROM leases WHERE name = ?1;

-- name: LeaseRelease
UPDATE leases SET expires_at = acquired_at WHERE name = ?1 AND owner = ?2;

-- name: LeaseList
SELECT name, owner, fence, acquired_at, renewed_at, expires_at FROM leases
WHERE substr(name, 1, length(?1)) = ?1 AND expires_at > ?2
ORDER BY name;

-- name: ExternalCallInsert
INSERT INTO external_calls (id, instance_id, execution_id, idempotency_key, request, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
RETURNING id, instance_id, execution_id, idempotency_key, status, request, response, attempts,
    last_error, version, created_at, updated_at;

-- name: ExternalCallGet
SELECT id, instance_id, execution_id, idempotency_key, status, request, response, attempts,
    last_error, version, created_at, updated_at
FROM external_calls
WHERE id = ?1;

-- name: ExternalCallUpdate
UPDATE external_calls
SET status = ?3, response = ?4, attempts = ?5, last_error = ?6, updated_at = ?7, version = version + 1
WHERE id = ?1 AND version = ?2
RETURNING id, instance_id, execution_id, idempotency_key, status, request, response, attempts,
    last_error, version, created_at, updated_at;

-- name: ExternalCallExists
SELECT 1 FROM external_calls WHERE id = ?1;

-- name: ExternalCallListUnfinished
SELECT id, instance_id, execution_id, idempotency_key, status, request, response, attempts,
    last_error, version, created_at, updated_at
FROM external_calls
WHERE status IN ('pending', 'unknown') AND updated_at < ?1
ORDER BY updated_at, id
LIMIT ?2;

-- name: InboxInsert
INSERT INTO inbox (source, message_id, received_at, result)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (source, message_id) DO NOTHING
RETURNING source, message_id, received_at, result;

-- name: InboxGet
SELECT source, message_id, received_at, result FROM inbox WHERE source = ?1 AND message_id = ?2;

-- name: WorkEnqueue
INSERT INTO work_items (id, instance_id, execution_id, kind, handler, run_at, created_at,
    attempts, lease_owner, lease_expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT (execution_id) DO NOTHING
RETURNING id, instance_id, execution_id, kind, handler, run_at, attempts, lease_owner,
    lease_expires_at, created_at;

-- name: WorkClaim
-- ?6 lists the handlers the claimer runs; the (handler, run_at) index
-- keeps items for other handlers out of the search.
UPDATE work_items
SET lease_owner = ?1, lease_expires_at = ?3, run_at = ?3, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM work_items
    WHERE handler IN (SELECT value FROM json_each(?6))
      AND run_at <= ?2
      AND (?5 = '' OR kind = ?5)
    ORDER BY run_at, id
    LIMIT ?4)
RETURNING id, instance_id, execution_id, kind, handler, run_at, attempts, lease_owner,
    lease_expires_at, created_at,
    coalesce((SELECT i.version FROM instances i WHERE i.id = work_items.instance_id), 0);

-- name: WorkClaimAny
UPDATE work_items
SET lease_owner = ?1, lease_expires_at = ?3, run_at = ?3, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM work_items
    WHERE run_at <= ?2 AND (?5 = '' OR kind = ?5)
    ORDER BY run_at, id
    LIMIT ?4)
RETURNING id, instance_id, execution_id, kind, handler, run_at, attempts, lease_owner,
    lease_expires_at, created_at,
    coalesce((SELECT i.version FROM instances i WHERE i.id = work_items.instance_id), 0);

-- name: WorkExtend
UPDATE work_items
SET lease_expires_at = ?3, run_at = ?3
WHERE id = ?1 AND lease_owner = ?2
RETURNING id, instance_id, execution_id, kind, handler, run_at, attempts, lease_owner,
    lease_expires_at, created_at;

-- name: WorkComplete
DELETE FROM work_items WHERE id = ?1 AND lease_owner = ?2;

-- name: WorkRetry
UPDATE work_items
SET lease_owner = '', lease_expires_at = NULL, run_at = ?3
WHERE id = ?1 AND lease_owner = ?2
RETURNING id, instance_id, execution_id, kind, handler, run_at, attempts, lease_owner,
    lease_expires_at, created_at;

-- name: WorkGet
SELECT id, instance_id, execution_id, kind, handler, run_at, attempts, lease_owner,
    lease_expires_at, created_at
FROM work_items
WHERE id = ?1;

-- name: WorkExists
SELECT 1 FROM work_items WHERE id = ?1;

-- name: WorkNextRunAt
-- ?1 lists handlers (NULL: all); each handler's minimum is one index seek.
SELECT CASE WHEN ?1 IS NULL THEN (SELECT min(run_at) FROM work_items)
    ELSE (SELECT min((SELECT min(w.run_at) FROM work_items w WHERE w.handler = j.value))
          FROM json_each(?1) j)
    END;

-- name: WorkRelease
UPDATE work_items
SET lease_owner = '', lease_expires_at = NULL, run_at = ?3, attempts = max(attempts - 1, 0)
WHERE id = ?1 AND lease_owner = ?2;

-- name: WorkDeleteByExecution
DELETE FROM work_items WHERE execution_id = ?1;

-- name: MessageInsert
INSERT INTO messages (id, name, correlation, payload, source, message_id, received_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
RETURNING id, name, correlation, payload, source, message_id, received_at, expires_at,
    consumed_at, consumed_by;

-- name: MessageTake
UPDATE messages
SET consumed_at = ?4, consumed_by = ?3
WHERE id = (
    SELECT id FROM messages
    WHERE name = ?1 AND correlation = ?2 AND consumed_at IS NULL AND expires_at > ?4
    ORDER BY received_at, id
    LIMIT 1)
RETURNING id, name, correlation, payload, source, message_id, received_at, expires_at,
    consumed_at, consumed_by;

-- name: MessageLock
-- One writer at a time already serialises delivery and receive on SQLite.
UPDATE messages SET consumed_by = consumed_by WHERE 0 AND ?1 <> ?2;

-- name: ClockNow
SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER);

-- name: TaskList
SELECT id, instance_id, execution_id, activity_id, type, wait_key, payload, assignee, due_at,
    consumed_at, consumed_by, consume_key, result, version, created_at
FROM bookmarks
WHERE type = 'UserAction'
  AND (?1 = '' OR instance_id = ?1)
  AND (?2 = '' OR assignee = ?2)
  AND (?3 = '' OR EXISTS (SELECT 1 FROM json_each(payload, '$.candidateRoles') r WHERE r.value = ?3))
  AND (?4 = '' OR (?4 = 'open') = (consumed_at IS NULL))
  AND (?5 = '' OR id > ?5)
ORDER BY id
LIMIT ?6;

-- name: WakeChannel
-- SQLite has no notifications; engines on one file poll.
SELECT '';

-- name: EventTail
-- One writer at a time: seq order is commit order.
SELECT 0, seq, id, instance_id, type, payload, occurred_at
FROM outbox
WHERE ?1 = ?1 AND seq > ?2
ORDER BY seq
LIMIT ?3;

-- name: EventHead
SELECT 0, COALESCE(max(seq), 0) FROM outbox;

-- name: BreakerGet
SELECT name, state, failures, opened_at, updated_at FROM circuit_breakers WHERE name = ?1;

-- name: BreakerList
SELECT name, state, failures, opened_at, updated_at FROM circuit_breakers ORDER BY name;

-- name: BreakerRecord
-- ?2 success, ?3 threshold, $4 now. A failure opens the breaker at the
-- threshold, or at once when it was half-open (the probe failed).
INSERT INTO circuit_breakers AS b (name, state, failures, opened_at, updated_at)
VALUES (?1,
    CASE WHEN ?2 OR ?3 > 1 THEN 'closed' ELSE 'open' END,
    CASE WHEN ?2 THEN 0 ELSE 1 END,
    CASE WHEN ?2 OR ?3 > 1 THEN NULL ELSE ?4 END,
    ?4)
ON CONFLICT (name) DO UPDATE SET
    state = CASE WHEN ?2 THEN 'closed'
                 WHEN b.state = 'half_open' OR b.failures + 1 >= ?3 THEN 'open'
                 ELSE b.state END,
    failures = CASE WHEN ?2 THEN 0 ELSE b.failures + 1 END,
    opened_at = CASE WHEN ?2 THEN NULL
                     WHEN b.state = 'half_open' OR (b.state = 'closed' AND b.failures + 1 >= ?3) THEN ?4
                     ELSE b.opened_at END,
    updated_at = ?4
RETURNING name, state, failures, opened_at, updated_at;

-- name: BreakerProbe
UPDATE circuit_breakers SET state = 'half_open', updated_at = ?2
WHERE name = ?1 AND ((state = 'open' AND opened_at <= ?3) OR (state = 'half_open' AND updated_at <= ?3));

-- name: BreakerReset
UPDATE circuit_breakers SET state = 'closed', failures = 0, opened_at = NULL, updated_at = ?2
WHERE name = ?1
RETURNING name, state, failures, opened_at, updated_at;

-- Retention (package retention): small batches, oldest first. One writer
-- at a time: the batch needs no row locks. The ids (?1 of the
-- InstancePurge* deletes) and the excluded definitions are JSON arrays.

-- name: InstancePurgeSelect
SELECT i.id, i.definition_id, i.status FROM instances i
WHERE i.status IN ('completed', 'failed', 'cancelled', 'timed_out')
  AND i.updated_at < ?1
  AND i.definition_id NOT IN (SELECT value FROM json_each(?2))
  AND NOT EXISTS (SELECT 1 FROM instances c
      WHERE c.parent_id = i.id AND c.parent_id <> '' AND c.status NOT IN ('completed', 'failed', 'cancelled', 'timed_out'))
ORDER BY i.updated_at
LIMIT ?3;

-- name: InstancePurgeSelectDefinition
SELECT i.id, i.definition_id, i.status FROM instances i
WHERE i.status IN ('completed', 'failed', 'cancelled', 'timed_out')
  AND i.updated_at < ?1
  AND i.definition_id = ?2
  AND NOT EXISTS (SELECT 1 FROM instances c
      WHERE c.parent_id = i.id AND c.parent_id <> '' AND c.status NOT IN ('completed', 'failed', 'cancelled', 'timed_out'))
ORDER BY i.updated_at
LIMIT ?3;

-- name: InstancePurgeMessages
DELETE FROM messages
WHERE consumed_by IN (SELECT e.id FROM activity_executions e
    WHERE e.instance_id IN (SELECT value FROM json_each(?1)));

-- name: InstancePurgeWork
DELETE FROM work_items WHERE instance_id IN (SELECT value FROM json_each(?1));

-- name: InstancePurgeCalls
DELETE FROM external_calls WHERE instance_id IN (SELECT value FROM json_each(?1));

-- name: InstancePurgeBookmarks
DELETE FROM bookmarks WHERE instance_id IN (SELECT value FROM json_each(?1));

-- name: InstancePurgeExecutions
DELETE FROM activity_executions WHERE instance_id IN (SELECT value FROM json_each(?1));

-- name: InstancePurgeLog
DELETE FROM execution_log WHERE instance_id IN (SELECT value FROM json_each(?1));

-- name: InstancePurgeInstances
DELETE FROM instances WHERE id IN (SELECT value FROM json_each(?1));

-- name: OutboxPurge
-- An event goes once every active cursor of its partition (updated after
-- the cutoff) is at or past it and no sink has it parked. Cursors are seq
-- alone here (pos_xid stays 0).
DELETE FROM outbox WHERE seq IN (
    SELECT o.seq FROM outbox o
    WHERE o.occurred_at < ?1
      AND NOT EXISTS (SELECT 1 FROM sink_cursors c
          WHERE c.part = o.part AND c.updated_at > ?1 AND c.pos_seq < o.seq)
      AND NOT EXISTS (SELECT 1 FROM sink_parked p WHERE p.event_id = o.id)
    ORDER BY o.occurred_at
    LIMIT ?2);

-- name: InboxPurge
DELETE FROM inbox WHERE rowid IN (
    SELECT rowid FROM inbox WHERE received_at < ?1 ORDER BY received_at LIMIT ?2);

-- name: MessagePurge
DELETE FROM messages WHERE id IN (
    SELECT id FROM messages WHERE consumed_at IS NULL AND expires_at < ?1 ORDER BY expires_at LIMIT ?2);

-- name: InstanceCountsAdd
INSERT INTO instance_counts AS c (definition_id, status, shard, n)
VALUES (?1, ?2, ?3, ?4)
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
WHERE i.status = ?1 AND i.updated_at < ?2
ORDER BY i.updated_at
LIMIT ?3;

-- name: ExecutionListRetrying
SELECT e.instance_id, i.definition_id, e.activity_id, e.id, e.attempt, e.error, i.updated_at
FROM activity_executions e
JOIN instances i ON i.id = e.instance_id
WHERE e.status = 'scheduled' AND e.error IS NOT NULL
  AND i.status IN ('running', 'waiting', 'compensating')
ORDER BY i.updated_at
LIMIT ?1;

-- name: UserTaskStats
SELECT count(*), min(created_at)
FROM bookmarks
WHERE type = ?1 AND consumed_at IS NULL;


-- name: AlertStateList
SELECT name, state, since, value, updated_at FROM alert_states ORDER BY name;

-- name: AlertStatePut
INSERT INTO alert_states AS a (name, state, since, value, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (name) DO UPDATE SET
    state = excluded.state, since = excluded.since, value = excluded.value, updated_at = excluded.updated_at;
