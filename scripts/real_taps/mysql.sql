-- scripts/real_taps.py: the MariaDB/MySQL databases pipelinewise-tap-mysql reads. Every common
-- column type at its edges, NULL everywhere, zero dates (the session's sql_mode is permissive),
-- BIGINT UNSIGNED max, names with spaces and mixed case, a second database whose name has a
-- space with money-like columns and many rows. `updated_at` is every table's replication key.
SET SESSION sql_mode = 'ALLOW_INVALID_DATES';
SET SESSION time_zone = '+00:00';
SET SESSION max_recursive_iterations = 1000000;
CREATE DATABASE realtaps CHARACTER SET utf8mb4;
CREATE TABLE realtaps.all_types (
  id INT PRIMARY KEY,
  updated_at DATETIME(6) NOT NULL,
  c_tinyint TINYINT,
  c_bool TINYINT(1),
  c_smallint SMALLINT,
  c_mediumint MEDIUMINT,
  c_int INT,
  c_bigint BIGINT,
  c_int_unsigned INT UNSIGNED,
  c_bigint_unsigned BIGINT UNSIGNED,
  c_float FLOAT,
  c_double DOUBLE,
  c_dec38 DECIMAL(38,10),
  c_dec65 DECIMAL(65,30),
  c_dec10_2 DECIMAL(10,2),
  c_dec20 DECIMAL(20,0),
  c_bit BIT(1),
  c_char CHAR(4),
  c_varchar VARCHAR(32),
  c_text TEXT,
  c_varbinary VARBINARY(8),
  c_date DATE,
  c_datetime DATETIME,
  c_datetime6 DATETIME(6),
  c_timestamp TIMESTAMP NULL DEFAULT NULL,
  c_time TIME(6),
  c_enum ENUM('sad', 'ok', 'happy', 'très content'),
  c_json JSON,
  `Mixed Case` VARCHAR(10),
  `with space` INT
) CHARACTER SET utf8mb4;

INSERT INTO realtaps.all_types VALUES
-- 1: ordinary values
(1, '2024-01-01 00:00:01', 12, 1, 1234, 123456, 1234567, 1234567890123, 4000000000, 12345678901234567890,
 1.5, 3.141592653589793, 123.4560000000, 12345.678901234567890123456789012345, 12.30, 12345678901234567890,
 b'1', 'ab', 'varchar', 'hello', x'DEADBEEF', '2024-02-29', '2024-02-29 23:59:59', '2024-02-29 23:59:59.123456',
 '2024-03-10 10:30:00', '13:45:56.123456', 'happy', '{"a": 1, "b": [true, null, "x"], "c": {"d": 1.10}}', 'Mixed', 7),
-- 2: NULL in every nullable column
(2, '2024-01-01 00:00:02', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
-- 3: maxima: BIGINT UNSIGNED max, DECIMAL(38,10) at its own upper bound
(3, '2024-01-01 00:00:03', 127, 1, 32767, 8388607, 2147483647, 9223372036854775807, 4294967295, 18446744073709551615,
 3.40282e38, 1.7976931348623157e308, 9999999999999999999999999999.9999999999,
 99999999999999999999999999999999999.999999999999999999999999999999, 99999999.99, 99999999999999999999,
 b'1', 'abcd', REPEAT('v', 32), REPEAT('x', 5000), x'FFFFFFFFFFFFFFFF', '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999',
 '2038-01-19 03:14:07', '838:59:59', 'très content', '{"deep": {"deeper": {"deepest": [1, [2, [3]]]}}, "big": 12345678901234567890}', 'MAX', 2147483647),
-- 4: minima: DECIMAL(38,10) at its own lower bound, zero dates
(4, '2024-01-01 00:00:04', -128, 0, -32768, -8388608, -2147483648, -9223372036854775808, 0, 0,
 -3.40282e38, -1.7976931348623157e308, -9999999999999999999999999999.9999999999,
 -99999999999999999999999999999999999.999999999999999999999999999999, -99999999.99, -99999999999999999999,
 b'0', '', '', '', x'', '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00.000000',
 '1970-01-01 00:00:01', '00:00:00', 'sad', '[]', 'min', -2147483648),
-- 5: small and awkward values, text that CSV must quote
(5, '2024-01-01 00:00:05', 0, 0, 0, 0, 0, 0, 0, 1,
 1e-38, 5e-324, 0.0000000001, 0.000000000000000000000000000001, 0.01, 0,
 b'0', ' a', 'é', 'comma, "quote"\nnewline\ttab \\ backslash ünïcödé 😀', x'00', '1000-01-01', '1000-01-01 00:00:00', '1970-01-01 00:00:00.000001',
 '2000-01-01 00:00:00', '-838:59:59', 'ok', '"just a string"', 'Ünïcode', 0),
-- 6: negative and trailing-zero decimals, a date with a zero day
(6, '2024-01-01 00:00:06', -1, 1, -1, -1, -1, -1, 1, 9223372036854775808,
 -0.1, 0.1, -0.1000000000, -0.5, -0.10, -1,
 b'1', 'N', 'NULL', 'null', x'5C6E', '2024-02-00', '2024-00-00 12:00:00', '2000-01-01 00:00:00.000001',
 '2000-01-01 00:00:00', '00:00:00.000001', 'sad', 'null', '', -1),
-- 7: more digits than a double holds
(7, '2024-01-01 00:00:07', 1, NULL, 1, 1, 2147483646, 9007199254740993, 4294967294, 9007199254740993,
 16777217, 0.30000000000000004, 1234567890123456789.0123456789, 9007199254740993.000000000000000001, 0.07, 9007199254740993,
 NULL, '1.0', '1e400', '0.30000000000000004', NULL, '2024-12-31', '2024-12-31 23:59:59', '2024-12-31 23:59:59.999999',
 NULL, NULL, NULL, '{"big": 9007199254740993, "exact": 0.30000000000000004}', NULL, NULL);

CREATE DATABASE `Sales Data` CHARACTER SET utf8mb4;
CREATE TABLE `Sales Data`.`Ledger Entries` (
  id BIGINT PRIMARY KEY,
  updated_at DATETIME NOT NULL,
  `Amount` DECIMAL(18,2) NOT NULL,
  unit_price DECIMAL(12,4),
  quantity INT,
  tax_rate DECIMAL(5,4),
  total DECIMAL(30,6),
  currency CHAR(3),
  booked_on DATE,
  note VARCHAR(40)
) CHARACTER SET utf8mb4;
INSERT INTO `Sales Data`.`Ledger Entries`
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 20000)
SELECT i,
       TIMESTAMP('2024-01-01 00:00:00') + INTERVAL i SECOND,
       ((i * 7919) % 2000001 - 1000000) / 100,
       CASE WHEN i % 10 = 0 THEN NULL ELSE ((i * 104729) % 100000000) / 10000 END,
       CASE WHEN i % 13 = 0 THEN NULL ELSE i % 1000 END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 10000) / 10000 END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE ((i * 7919) % 2000001 - 1000000) / 100 * (i % 1000) END,
       ELT(1 + i % 4, 'EUR', 'USD', 'JPY', NULL),
       DATE('2020-01-01') + INTERVAL (i % 2000) DAY,
       CASE WHEN i % 17 = 0 THEN NULL ELSE CONCAT('entry ', i) END
FROM seq;
