-- Statements an analyst's SQL must never run, on every door (HTTP, Postgres wire, Flight
-- SQL, `bright sql`). `{dir}` is a folder the test owns: after the list, nothing may be in
-- it but what the test put there, and the lake is unchanged. One statement per block;
-- a line that says only "-- next" ends a block.
CREATE EXTERNAL TABLE secret STORED AS CSV LOCATION '{dir}/secret.csv'
-- next
CREATE EXTERNAL TABLE passwd (line TEXT) STORED AS CSV LOCATION '/etc/passwd'
-- next
COPY (SELECT 1 AS x) TO '{dir}/copied.csv'
-- next
COPY (SELECT * FROM beds) TO '{dir}/beds.parquet' STORED AS PARQUET
-- next
SELECT * FROM '{dir}/secret.csv'
-- next
SELECT * FROM 'some/path.parquet'
-- next
SELECT * FROM '/etc/passwd'
-- next
SELECT * FROM read_csv('{dir}/secret.csv')
-- next
SELECT * FROM read_parquet('some/path.parquet')
-- next
SELECT * FROM parquet_metadata('{dir}/secret.csv')
-- next
INSERT INTO beds SELECT * FROM beds
-- next
DELETE FROM beds
-- next
UPDATE beds SET ward = 'x'
-- next
DROP TABLE beds
-- next
DROP VIEW kpi.ed_4h_performance
-- next
CREATE TABLE t AS SELECT 1 AS x
-- next
CREATE VIEW v AS SELECT 1 AS x
-- next
CREATE SCHEMA mine
-- next
SET datafusion.execution.target_partitions = 64
-- next
SET datafusion.runtime.memory_limit = '100G'
-- next
SET datafusion.catalog.information_schema = false
-- next
SELECT 1; DROP TABLE beds
-- next
SELECT 1; COPY (SELECT 1 AS x) TO '{dir}/hidden.csv'
-- next
SELECT 1 AS x; CREATE EXTERNAL TABLE s2 STORED AS CSV LOCATION '{dir}/secret.csv'
-- next
EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{dir}/explained.csv'
-- next
EXPLAIN ANALYZE INSERT INTO beds SELECT * FROM beds
-- next
SELECT * FROM spc_xmr('COPY (SELECT 1 AS x) TO ''{dir}/spc.csv''')
-- next
SELECT * FROM spc_xmr('SELECT * FROM ''{dir}/secret.csv''')
