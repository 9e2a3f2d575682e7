-- scripts/real_taps.py: changes between the first and the incremental run.
SET SESSION sql_mode = 'ALLOW_INVALID_DATES';
SET SESSION time_zone = '+00:00';
SET SESSION max_recursive_iterations = 1000000;
UPDATE realtaps.all_types SET updated_at = '2024-06-01 00:00:00', c_dec38 = -0.0000000001, c_text = 'updated',
  c_bigint_unsigned = 18446744073709551614 WHERE id = 1;
UPDATE realtaps.all_types SET updated_at = '2024-06-01 00:00:01', c_dec38 = 0, c_date = '0000-00-00' WHERE id = 5;
INSERT INTO realtaps.all_types (id, updated_at, c_dec38, c_dec65, c_dec10_2, c_bigint_unsigned, c_enum, c_text, c_date, c_datetime6, c_bool)
VALUES (8, '2024-06-02 00:00:00', 9999999999999999999999999999.9999999999, 1e30, -0.01, 18446744073709551615, 'ok', 'new', '2024-06-02', '0000-00-00 00:00:00', 0),
       (9, '2024-06-02 00:00:01', -9999999999999999999999999999.9999999999, -1e-30, 0.99, 0, 'happy', '', '0001-01-01', '0001-01-01 00:00:00', 1);
UPDATE `Sales Data`.`Ledger Entries` SET updated_at = TIMESTAMP('2024-06-01 00:00:00') + INTERVAL id SECOND,
  `Amount` = `Amount` + 0.01, total = NULL WHERE id % 1000 = 0;
INSERT INTO `Sales Data`.`Ledger Entries`
WITH RECURSIVE seq(i) AS (SELECT 20001 UNION ALL SELECT i + 1 FROM seq WHERE i < 20500)
SELECT i, TIMESTAMP('2024-07-01 00:00:00') + INTERVAL i SECOND, -0.01 * i, 0.0001, 1, 0.9999, 0.1 + i, 'EUR', '2024-07-01', CONCAT('late ', i)
FROM seq;
