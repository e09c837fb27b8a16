DROP TABLE run_attempts;
DROP TABLE runs;
DROP TABLE integration_environments;
DROP TABLE integrations;
