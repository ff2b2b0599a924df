-- Snapshots of the liquidation state of each fse.invoices partition (stream/state.py), so that a
-- worker taking over a partition reads one snapshot and the changelog records after it instead
-- of the whole changelog. `changelog_offset` is the last fse.state record the snapshot includes.
CREATE TABLE liquidation_snapshots (
    app_id           text    NOT NULL,   -- the faust app (topic prefix + app id)
    partition        integer NOT NULL,
    changelog_offset bigint  NOT NULL,
    next_offset      bigint  NOT NULL,   -- first fse.invoices offset not in the state
    entries          bigint  NOT NULL,
    taken_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    state            bytea   NOT NULL,   -- codecs/batch.py value: the live rows of the table
    PRIMARY KEY (app_id, partition)
);
