-- Sample source schema for the demo: an online shop's customers and orders, with the
-- types aurora2bq maps (docs/types.md), NULLs, non-ASCII text and old and far-future times.

CREATE TABLE IF NOT EXISTS customers (
    id          bigint PRIMARY KEY,
    email       text NOT NULL,
    full_name   varchar(200),
    country     char(2),
    vip         boolean NOT NULL DEFAULT false,
    born_on     date,
    signed_up   timestamptz NOT NULL,
    profile     jsonb,
    external_id uuid
);

CREATE TABLE IF NOT EXISTS orders (
    id          bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    quantity    smallint NOT NULL,
    line_count  integer,
    amount      numeric(12, 2) NOT NULL,
    tax_rate    real,
    weight_kg   double precision,
    status      text NOT NULL,
    note        text,
    placed_at   timestamp NOT NULL,
    updated_at  timestamptz NOT NULL,
    receipt     bytea,
    meta        json
);

INSERT INTO customers
SELECT g,
       'customer' || g || '@example.com',
       CASE WHEN g % 7 = 0 THEN NULL WHEN g % 5 = 0 THEN 'Zoë Ñúñez-' || g ELSE 'Customer ' || g END,
       (ARRAY['DE', 'FR', 'JP', 'US', 'BR'])[1 + g % 5],
       g % 10 = 0,
       CASE WHEN g % 9 = 0 THEN NULL ELSE date '1950-01-01' + (g * 37) % 20000 END,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '17 minutes 3.000123 seconds',
       CASE WHEN g % 4 = 0 THEN NULL ELSE jsonb_build_object('tier', g % 3, 'tags', jsonb_build_array('a', 'ü')) END,
       CASE WHEN g % 6 = 0 THEN NULL ELSE md5(g::text)::uuid END
FROM generate_series(1, 2000) AS g
ON CONFLICT (id) DO NOTHING;

INSERT INTO orders
SELECT g,
       1 + g % 2000,
       (1 + g % 9)::smallint,
       CASE WHEN g % 11 = 0 THEN NULL ELSE g % 40 END,
       round((g * 7.31) % 100000, 2),
       CASE WHEN g % 13 = 0 THEN NULL ELSE 0.19 END,
       CASE WHEN g % 3 = 0 THEN NULL ELSE g / 7.0 END,
       (ARRAY['new', 'paid', 'shipped', 'returned'])[1 + g % 4],
       CASE WHEN g % 2 = 0 THEN NULL WHEN g % 3 = 0 THEN '' ELSE 'Lieferung an der Tür 🚪 #' || g END,
       timestamp '1969-12-31 23:00:00' + g * interval '1 hour 0.5 seconds',
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
       CASE WHEN g % 5 = 0 THEN NULL WHEN g % 5 = 1 THEN ''::bytea ELSE decode(md5(g::text), 'hex') END,
       CASE WHEN g % 8 = 0 THEN NULL ELSE json_build_object('channel', 'web', 'n', g) END
FROM generate_series(1, 20000) AS g
ON CONFLICT (id) DO NOTHING;
