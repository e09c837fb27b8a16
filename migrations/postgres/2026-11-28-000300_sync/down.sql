DROP TABLE sync_records;
DROP TABLE integration_sync;
