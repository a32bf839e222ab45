-- Many small tables for the latency benchmark: schema `many`, tables t0001.., each with
-- :rows rows of the bench_rows shape's first columns.
-- psql -v tables=N -v rows=M -f many.sql
DROP SCHEMA IF EXISTS many CASCADE;
CREATE SCHEMA many;
SELECT format(
    'CREATE TABLE many.%I (id bigint PRIMARY KEY, account_id integer NOT NULL, code text NOT NULL, '
    'amount numeric(12, 2) NOT NULL, updated_at timestamptz NOT NULL); '
    'INSERT INTO many.%I SELECT g, g %% 1000, md5(g::text), g / 100.0, '
    'timestamptz ''2024-01-01 00:00:00+00'' + g * interval ''1 second'' FROM generate_series(1, %s) g',
    name, name, :rows)
FROM (SELECT 't' || lpad(i::text, 4, '0') AS name FROM generate_series(1, :tables) i) t
\gexec
