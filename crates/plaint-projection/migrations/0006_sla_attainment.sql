-- Service-level attainment, kept by the projector like the other summaries:
-- per route, priority the complaint was decided at, and target, the
-- complaints that met it (acknowledged, or resolved, without a breach of it)
-- and those that missed it (a breach recorded). Complaints whose target is
-- still running are in neither. States projected before complaints kept when
-- they were first acknowledged and closed count once a rebuild reads them again.
CREATE TABLE sla_attainment (
    route    text   NOT NULL,
    priority text   NOT NULL,
    target   text   NOT NULL,
    met      bigint NOT NULL,
    missed   bigint NOT NULL,
    PRIMARY KEY (route, priority, target)
);
