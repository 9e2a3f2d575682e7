-- scripts/real_taps.py: the Postgres database the three Postgres taps read (run by psql-like
-- execution in one transaction). Every common column type, each at its edges, NULL everywhere,
-- names with spaces and mixed case, a second (non-public) schema with money-like columns and
-- many rows. `updated_at` is every table's replication key. The server runs with
-- TimeZone=Asia/Kolkata (+05:30; +05:53:28 before 1942), so timestamptz values leave it with that
-- offset: the latest one here is 9999-12-31 23:59:59.999999 there (a later one is year 10000 in
-- that zone, which psycopg2, and so meltanolabs-tap-postgres, cannot read).
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très content');

CREATE TABLE public.all_types (
  id integer PRIMARY KEY,
  updated_at timestamp NOT NULL,
  c_smallint smallint,
  c_integer integer,
  c_bigint bigint,
  c_real real,
  c_double double precision,
  c_numeric numeric,
  c_num38 numeric(38,10),
  c_num5_2 numeric(5,2),
  c_num20 numeric(20,0),
  c_money money,
  c_text text,
  c_varchar varchar(16),
  c_char char(4),
  c_bool boolean,
  c_date date,
  c_time time,
  c_timetz time with time zone,
  c_ts timestamp,
  c_tstz timestamptz,
  c_interval interval,
  c_json json,
  c_jsonb jsonb,
  c_uuid uuid,
  c_bytea bytea,
  c_int_arr integer[],
  c_text_arr text[],
  c_num_arr numeric[],
  c_enum mood,
  "Mixed Case" text,
  "with space" integer
);

INSERT INTO public.all_types VALUES
-- 1: ordinary values
(1, '2024-01-01 00:00:01', 12, 123456, 1234567890123, 1.5, 3.141592653589793,
 '12345.6789', '123.4560000000', '12.30', '12345678901234567890', '12.34',
 'hello', 'varchar', 'ab', true, '2024-02-29', '13:45:56.123456', '13:45:56+02',
 '2024-02-29 23:59:59.123456', '2024-03-10 02:30:00-08', '1 year 2 mons 3 days 04:05:06',
 '{"a": 1, "b": [true, null, "x"], "c": {"d": 1.10}}', '{"k": "v", "n": 12345678901234567890}',
 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\xdeadbeef00',
 '{1,2,3}', '{"a","b"}', '{1.10,2.25}', 'happy', 'Mixed', 7),
-- 2: NULL in every nullable column
(2, '2024-01-01 00:00:02', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL),
-- 3: maxima: each type's largest value, NUMERIC(38,10) at its own upper bound
(3, '2024-01-01 00:00:03', 32767, 2147483647, 9223372036854775807, 3.4028235e38, 1.7976931348623157e308,
 '123456789012345678901234567890.123456789012345678901234567890',
 '9999999999999999999999999999.9999999999', '999.99', '99999999999999999999', '92233720368547758.07',
 repeat('x', 5000), repeat('v', 16), 'abcd', true, '9999-12-31', '23:59:59.999999', '23:59:59-12',
 '9999-12-31 23:59:59.999999', '9999-12-31 18:29:59.999999+00', '1000 years',
 '[1e308, 123456789012345678901234567890]', '{"deep": {"deeper": {"deepest": [1, [2, [3]]]}}}',
 'ffffffff-ffff-ffff-ffff-ffffffffffff', '\xffffffff',
 '{2147483647,-2147483648}', '{"zzz"}', '{99999999999999999999.99999999999999999999}', 'très content', 'MAX', 2147483647),
-- 4: minima: NUMERIC(38,10) at its own lower bound, the earliest dates
(4, '2024-01-01 00:00:04', -32768, -2147483648, -9223372036854775808, -3.4028235e38, -1.7976931348623157e308,
 '-123456789012345678901234567890.123456789012345678901234567890',
 '-9999999999999999999999999999.9999999999', '-999.99', '-99999999999999999999', '-92233720368547758.08',
 '', '', '', false, '0001-01-01', '00:00:00', '00:00:00+14',
 '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '-1000 years',
 '[]', '{}',
 '00000000-0000-0000-0000-000000000000', '\x',
 '{}', '{}', '{}', 'sad', 'min', -2147483648),
-- 5: small and awkward values: tiny decimals, NULL array elements, text that CSV must quote
(5, '2024-01-01 00:00:05', 0, 0, 0, 1e-45, 5e-324,
 '0.000000000000000000000000000001', '0.0000000001', '0.01', '0', '0.00',
 E'comma, "quote"\nnewline\ttab \\ backslash ünïcödé 😀', 'é', ' a ', false, '1970-01-01', '12:00:00', '12:00:00-00',
 '1970-01-01 00:00:00', '1969-12-31 23:59:59.999999+00', '0 seconds',
 '"just a string"', '[1, "two", null]',
 '123e4567-e89b-12d3-a456-426614174000', '\x00',
 '{1,NULL,3}', '{NULL,"b,c","\"q\"",""," "}', '{NULL,0.1}', 'ok', 'Ünïcode', 0),
-- 6: negative and trailing-zero decimals, values a double cannot hold exactly
(6, '2024-01-01 00:00:06', -1, -1, -1, -0.1, 0.1,
 '-0.50', '-0.1000000000', '-0.10', '-1', '-0.01',
 'null', 'NULL', 'N', true, '2000-01-01', '00:00:00.000001', '00:00:01+05:30',
 '2000-01-01 00:00:00.000001', '2000-01-01 00:00:00.000001+05:30', '-1 days -00:00:01',
 'null', 'false',
 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '\x5c6e',
 '{NULL}', '{NULL}', '{NULL}', 'sad', '', -1),
-- 7: more digits than a double holds
(7, '2024-01-01 00:00:07', 1, 2147483646, 9007199254740993, 16777217, 0.30000000000000004,
 '9007199254740993.000000000000000001', '1234567890123456789.0123456789', '0.07', '9007199254740993', '0.07',
 '0.30000000000000004', '1e400', '1.0', NULL, '2024-12-31', NULL, NULL,
 '2024-12-31 23:59:59.999999', '2024-12-31 23:59:59.999999-00', NULL,
 '{"big": 9007199254740993, "exact": 0.30000000000000004}', '{"big": 9007199254740993}',
 NULL, NULL,
 '{9,NULL,NULL}', '{"a",NULL}', '{9007199254740993.000000000000000001,-0.000000000000000000000000000001}', NULL, NULL, NULL);

-- money-like columns, many rows, in a schema with a space and capitals
CREATE SCHEMA "Sales Data";
CREATE TABLE "Sales Data"."Ledger Entries" (
  id bigint PRIMARY KEY,
  updated_at timestamptz NOT NULL,
  "Amount" numeric(18,2) NOT NULL,
  unit_price numeric(12,4),
  quantity integer,
  tax_rate numeric(5,4),
  total numeric,
  currency char(3),
  booked_on date,
  note varchar(40)
);
INSERT INTO "Sales Data"."Ledger Entries"
SELECT i,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second',
       ((i * 7919) % 2000001 - 1000000) / 100.0,
       CASE WHEN i % 10 = 0 THEN NULL ELSE ((i * 104729) % 100000000) / 10000.0 END,
       CASE WHEN i % 13 = 0 THEN NULL ELSE i % 1000 END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 10000) / 10000.0 END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE ((i * 7919) % 2000001 - 1000000) / 100.0 * (i % 1000) END,
       (ARRAY['EUR', 'USD', 'JPY', NULL])[1 + i % 4],
       date '2020-01-01' + (i % 2000),
       CASE WHEN i % 17 = 0 THEN NULL ELSE 'entry ' || i END
FROM generate_series(1, 20000) AS i;
