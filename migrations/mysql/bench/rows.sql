-- The MySQL benchmark table, like migrations/postgres/bench/rows.sql (~200-byte rows).
-- Generated with MariaDB's sequence engine (seq_1_to_N); on MySQL 8 use a recursive CTE.
-- mariadb -e "SET @rows = N; SOURCE rows.sql" does not expand @rows in a table name, so
-- scripts/bench substitutes ROWS before running it.
DROP TABLE IF EXISTS bench_rows;
CREATE TABLE bench_rows (
    id          bigint PRIMARY KEY,
    account_id  int NOT NULL,
    code        varchar(20) NOT NULL,
    amount      decimal(12, 2) NOT NULL,
    quantity    smallint NOT NULL,
    status      varchar(12) NOT NULL,
    active      tinyint(1) NOT NULL,
    created_at  timestamp(6) NOT NULL,
    updated_at  datetime(6) NOT NULL,
    note        text NULL,
    attrs       json NOT NULL
) ENGINE = InnoDB;
SET time_zone = '+00:00';
INSERT INTO bench_rows
SELECT seq,
       (seq * 7919) % 100000,
       LEFT(MD5(seq), 8 + seq % 13),
       ((seq * 104729) % 10000000) / 100.0,
       seq % 500,
       ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'cancelled'),
       seq % 3 <> 0,
       TIMESTAMP '2023-01-01 00:00:00' + INTERVAL seq SECOND,
       TIMESTAMP '2023-06-01 00:00:00' + INTERVAL (2 * seq) SECOND,
       IF(seq % 4 = 0, NULL, CONCAT('note for row ', seq, ' ', REPEAT('x', seq % 40))),
       JSON_OBJECT('src', 'web', 'v', seq % 10, 'flag', seq % 2 = 0)
FROM seq_1_to_ROWS;
ANALYZE TABLE bench_rows;
