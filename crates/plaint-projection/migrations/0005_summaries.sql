-- Figures over all complaints, kept by the projector: each batch adds what
-- it changed (a complaint leaving one queue and joining another is -1 and
-- +1), in the batch's own transaction. GetQueueStats and GetGoodwill read
-- these few rows instead of scanning every complaint, whose number only grows.

-- Complaints per route, status and priority ('' for none: key columns cannot
-- be NULL).
CREATE TABLE queue_counts (
    route      text   NOT NULL,
    status     text   NOT NULL,
    priority   text   NOT NULL,
    complaints bigint NOT NULL,
    PRIMARY KEY (route, status, priority)
);

-- Sums behind the mean times to route and to resolve.
CREATE TABLE complaint_durations (
    kind       text   PRIMARY KEY,
    total_ms   bigint NOT NULL,
    complaints bigint NOT NULL
);

-- Goodwill of resolved complaints with a satisfaction score, per UTC day of
-- resolution, route in force ('UNROUTED' for none) and channel.
CREATE TABLE goodwill_days (
    day              bigint NOT NULL,
    route            text   NOT NULL,
    channel          text   NOT NULL,
    resolved         bigint NOT NULL,
    satisfaction_sum bigint NOT NULL,
    recovered        bigint NOT NULL,
    PRIMARY KEY (day, route, channel)
);

-- A period that does not start or end at midnight reads its first and last
-- day's complaints themselves, through complaints_resolved.

INSERT INTO queue_counts
SELECT coalesce(route, ''), status, coalesce(priority, ''), count(*)
FROM complaints GROUP BY 1, 2, 3;

INSERT INTO complaint_durations
SELECT 'route', sum(routed_at - received_at), count(routed_at) FROM complaints
HAVING count(routed_at) > 0
UNION ALL
SELECT 'resolve', sum(resolved_at - received_at), count(resolved_at) FROM complaints
HAVING count(resolved_at) > 0;

INSERT INTO goodwill_days
SELECT floor(resolved_at / 86400000.0)::bigint, coalesce(route, 'UNROUTED'), channel,
       count(*), sum(satisfaction), count(*) FILTER (WHERE satisfaction >= 9)
FROM complaints
WHERE status = 'RESOLVED' AND satisfaction IS NOT NULL
GROUP BY 1, 2, 3;

-- A policy simulation starts its counters from the CEO engagements made just
-- before its span: few rows, found without reading every complaint.
CREATE INDEX complaints_ceo_engaged ON complaints (ceo_engaged_at)
    WHERE ceo_engaged_at IS NOT NULL;
