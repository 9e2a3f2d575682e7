-- scripts/real_taps.py: changes between the first and the incremental run (updated rows move
-- their replication key forward; new rows bring more edge values).
UPDATE public.all_types SET updated_at = '2024-06-01 00:00:00', c_num38 = '-0.0000000001', c_text = 'updated',
  c_int_arr = '{NULL,NULL}', c_numeric = '-99999999999999999999999999999999999999.99' WHERE id = 1;
UPDATE public.all_types SET updated_at = '2024-06-01 00:00:01', c_num38 = '0', c_tstz = '2024-06-01 12:00:00+09' WHERE id = 5;
INSERT INTO public.all_types (id, updated_at, c_num38, c_numeric, c_num5_2, c_int_arr, c_text_arr, c_enum, c_text, c_date, c_tstz, c_bool)
VALUES (8, '2024-06-02 00:00:00', '9999999999999999999999999999.9999999999', '1E+30', '-0.01', '{NULL,1}', '{NULL}', 'ok', 'new', '2024-06-02', '2024-06-02 00:00:00+00', false),
       (9, '2024-06-02 00:00:01', '-9999999999999999999999999999.9999999999', '-1E-30', '0.99', '{}', '{"x"}', 'happy', '', '0001-01-01', '0001-01-01 00:00:00+00', true);
UPDATE "Sales Data"."Ledger Entries" SET updated_at = timestamptz '2024-06-01 00:00:00+00' + id * interval '1 second',
  "Amount" = "Amount" + 0.01, total = NULL WHERE id % 1000 = 0;
INSERT INTO "Sales Data"."Ledger Entries"
SELECT i, timestamptz '2024-07-01 00:00:00+00' + i * interval '1 second', -0.01 * i, 0.0001, 1, 0.9999, 0.1 + i, 'EUR', date '2024-07-01', 'late ' || i
FROM generate_series(20001, 20500) AS i;
