-- Every decision was stored twice: in `decisions` and, word for word, as the
-- detail of its `complaint_routed` or `complaint_rerouted` timeline entry.
-- With its explanation it is the largest document a complaint has, and
-- PostgreSQL parsed, compressed and indexed both copies. Decisions are now
-- read from the timeline.
DROP TABLE decisions;

-- Like a complaint's state, an event's detail is written whole and read
-- whole, never queried inside: as text it is stored as it comes (cast it
-- with detail::jsonb to query it by hand).
ALTER TABLE timeline ALTER COLUMN detail TYPE text USING detail::text;

DO $$
BEGIN
    ALTER TABLE timeline ALTER COLUMN detail SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available; the timeline stays compressed with pglz';
END
$$;
