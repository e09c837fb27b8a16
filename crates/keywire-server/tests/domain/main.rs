//! The secrets manager's domain over HTTP, on the real `keywire` binary, on SQLite and (when
//! `KEYWIRE_TEST_DATABASE_URL` is set) PostgreSQL. One test binary; one module per area.

mod support;

mod access;
mod bad_input;
mod canary;
mod communication;
mod entries;
mod integrations;
mod members;
mod rotate;
mod sync;
mod webhook_secrets;
mod workspaces;
