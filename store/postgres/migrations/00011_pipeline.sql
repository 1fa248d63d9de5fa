-- Waymark schema v11: waymark_expect, which lets a write sent in a
-- pipelined transaction (many statements in one round trip, ending in
-- COMMIT) check that it changed a row. A write that matched none raises
-- SQLSTATE WM001, which aborts the transaction before its COMMIT runs: the
-- step then runs again the ordinary way, reading as it goes.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION waymark_expect(n bigint, what text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF n = 0 THEN
        RAISE EXCEPTION 'waymark: % matched no row', what USING ERRCODE = 'WM001';
    END IF;
    RETURN n;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION waymark_expect(bigint, text);
