-- Read models built from the event log. Every row records the last log
-- sequence applied to it; the projector writes a batch and its checkpoint in
-- one transaction, so an event is never applied twice nor skipped.
-- Instants are milliseconds since the Unix epoch (UTC), exactly as in the log.

-- The last log sequence each projector has applied.
CREATE TABLE checkpoint (
    name          text   PRIMARY KEY,
    last_sequence bigint NOT NULL
);

-- One row per complaint: its state as its events have made it.
CREATE TABLE complaints (
    complaint_id       uuid    PRIMARY KEY,
    source_system      text    NOT NULL,
    external_ticket_id text    NOT NULL,
    customer_id        text    NOT NULL,
    segment            text    NOT NULL,
    channel            text    NOT NULL,
    category           text    NOT NULL,
    status             text    NOT NULL,
    route              text,
    fulfilment         text,
    fulfilment_step    text,
    priority           text,
    assignee           text,
    satisfaction       integer,
    received_at        bigint  NOT NULL,
    routed_at          bigint,
    resolved_at        bigint,
    -- The first decision that sent it to the CEO, if any (sticky across re-routes).
    ceo_engaged_at     bigint,
    ceo_engaged        boolean GENERATED ALWAYS AS (ceo_engaged_at IS NOT NULL) STORED,
    last_sequence      bigint  NOT NULL,
    -- serde JSON of plaint_domain::Complaint, so the next event can be folded in.
    state              jsonb   NOT NULL
);

CREATE INDEX complaints_received ON complaints (received_at DESC, complaint_id DESC);
CREATE INDEX complaints_route ON complaints (route, received_at DESC, complaint_id DESC);
CREATE INDEX complaints_status ON complaints (status, received_at DESC, complaint_id DESC);
CREATE INDEX complaints_channel ON complaints (channel, received_at DESC, complaint_id DESC);
CREATE INDEX complaints_customer ON complaints (customer_id, received_at DESC, complaint_id DESC);
CREATE INDEX complaints_resolved ON complaints (resolved_at) WHERE status = 'RESOLVED';

-- Every complaint event, in log order.
CREATE TABLE timeline (
    sequence     bigint PRIMARY KEY,
    complaint_id uuid   NOT NULL,
    event_id     uuid   NOT NULL,
    event_type   text   NOT NULL,
    occurred_at  bigint NOT NULL,
    -- serde JSON of the event payload.
    detail       jsonb  NOT NULL
);

CREATE INDEX timeline_complaint ON timeline (complaint_id, sequence);

-- Every routing decision (first and re-routes), with its explanation.
CREATE TABLE decisions (
    sequence       bigint  PRIMARY KEY,
    complaint_id   uuid    NOT NULL,
    route          text    NOT NULL,
    decided_at     bigint  NOT NULL,
    policy_version integer NOT NULL,
    -- serde JSON of plaint_domain::Decision.
    decision       jsonb   NOT NULL
);

CREATE INDEX decisions_complaint ON decisions (complaint_id, sequence);

-- CEO engagements reserved from budget windows.
CREATE TABLE ceo_slots (
    window_start bigint NOT NULL,
    complaint_id uuid   NOT NULL,
    customer_id  text   NOT NULL,
    segment      text   NOT NULL,
    sequence     bigint NOT NULL,
    PRIMARY KEY (window_start, complaint_id)
);

-- Published routing policy versions.
CREATE TABLE policies (
    version      integer PRIMARY KEY,
    -- serde JSON of plaint_domain::RoutingPolicy.
    policy       jsonb   NOT NULL,
    published_at bigint  NOT NULL,
    published_by text    NOT NULL,
    sequence     bigint  NOT NULL
);

-- Company settings in force: `climate` and `stance`.
CREATE TABLE company (
    key      text   PRIMARY KEY,
    value    text   NOT NULL,
    sequence bigint NOT NULL
);
