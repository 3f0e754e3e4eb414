-- Service-level attainment per UTC day of receipt, so that the goodwill
-- report's attainment can answer a period. Rows kept before this change have
-- no day and are put on day 0 (1970-01-01): all-time figures stay right, a
-- period misses them until a rebuild puts each complaint on its own day.
ALTER TABLE sla_attainment ADD COLUMN day bigint NOT NULL DEFAULT 0;
ALTER TABLE sla_attainment DROP CONSTRAINT sla_attainment_pkey;
ALTER TABLE sla_attainment ADD PRIMARY KEY (day, route, priority, target);
ALTER TABLE sla_attainment ALTER COLUMN day DROP DEFAULT;
