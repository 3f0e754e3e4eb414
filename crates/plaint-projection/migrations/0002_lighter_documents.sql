-- A complaint's state is written as a whole and read back as a whole, never
-- queried inside. As jsonb, PostgreSQL parsed it, sorted its keys and printed
-- it again on every write and read; as text it is stored as it comes (cast
-- it with state::jsonb to query it by hand).
ALTER TABLE complaints ALTER COLUMN state TYPE text USING state::text;

-- The documents are 1-3 KB, so PostgreSQL compresses them on every write. Its
-- default pglz took about a tenth of all CPU while projecting; lz4 compresses
-- several times faster. Servers built without lz4 keep pglz.
DO $$
BEGIN
    ALTER TABLE complaints ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE timeline ALTER COLUMN detail SET COMPRESSION lz4;
    ALTER TABLE decisions ALTER COLUMN decision SET COMPRESSION lz4;
    ALTER TABLE policies ALTER COLUMN policy SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available; the documents stay compressed with pglz';
END
$$;
