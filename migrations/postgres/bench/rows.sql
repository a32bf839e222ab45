-- The benchmark table: about 200 bytes of mixed columns per row, generated in SQL.
-- psql -v rows=N -f rows.sql
DROP TABLE IF EXISTS bench_rows;
CREATE TABLE bench_rows (
    id          bigint PRIMARY KEY,
    account_id  integer NOT NULL,
    code        text NOT NULL,
    amount      numeric(12, 2) NOT NULL,
    quantity    smallint NOT NULL,
    status      text NOT NULL,
    active      boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    note        text,
    attrs       jsonb NOT NULL,
    tags        text[] NOT NULL
);
INSERT INTO bench_rows
SELECT g,
       (g::bigint * 7919) % 100000,
       substr(md5(g::text), 1, 8 + g % 13),
       ((g::bigint * 104729) % 10000000) / 100.0,
       (g % 500)::smallint,
       (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + g % 4],
       g % 3 <> 0,
       timestamptz '2023-01-01 00:00:00+00' + g * interval '1 second',
       timestamptz '2023-06-01 00:00:00+00' + g * interval '2 seconds',
       CASE WHEN g % 4 = 0 THEN NULL ELSE 'note for row ' || g || ' ' || repeat('x', g % 40) END,
       jsonb_build_object('src', 'web', 'v', g % 10, 'flag', g % 2 = 0),
       ARRAY['tag' || (g % 7), 'x']
FROM generate_series(1, :rows) AS g;
ANALYZE bench_rows;
