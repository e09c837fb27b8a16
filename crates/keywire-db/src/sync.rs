//! What state-based sync keeps: each infrastructure integration's settings (key template,
//! conflict policy, a target per environment, by environment id) and its records of what it
//! wrote at the target (key and a keyed hash of the value, never the value).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use keywire_core::sync::{EntryKind, SyncRecord};

use crate::db::{transaction, with_conn};
use crate::delivery::enqueue_sync_on;
use crate::schema::{integration_sync, sync_records};
use crate::tokens::now;
use crate::{Db, DbError};

type RecordRow = (String, String, String, String, Option<String>);

fn record_of((scope, key, environment_id, kind, hash): RecordRow) -> Option<SyncRecord> {
    Some(SyncRecord {
        environment_id,
        scope,
        key,
        kind: EntryKind::parse(&kind)?,
        hash,
    })
}

impl Db {
    /// The sync settings JSON of an integration, if it has any.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn sync_settings(&self, integration_id: &str) -> Result<Option<String>, DbError> {
        let settings = with_conn!(self, |conn| {
            integration_sync::table
                .find(integration_id)
                .select(integration_sync::settings)
                .first::<String>(conn)
                .await
                .optional()?
        });
        Ok(settings)
    }

    /// What the integration wrote at its target, by scope and key.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn sync_records(&self, integration_id: &str) -> Result<Vec<SyncRecord>, DbError> {
        let rows: Vec<RecordRow> = with_conn!(self, |conn| {
            sync_records::table
                .filter(sync_records::integration_id.eq(integration_id))
                .order((sync_records::scope.asc(), sync_records::key.asc()))
                .select((
                    sync_records::scope,
                    sync_records::key,
                    sync_records::environment_id,
                    sync_records::kind,
                    sync_records::value_hash,
                ))
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().filter_map(record_of).collect())
    }

    /// Writes records as they are given (`hash: None` before a write is attempted: the key is
    /// keywire's from now on, whatever happens to the write), and drops the records of
    /// `removed` (scope, key) in one transaction.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn save_sync_records(
        &self,
        integration_id: &str,
        records: &[SyncRecord],
        removed: &[(String, String)],
    ) -> Result<(), DbError> {
        if records.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let at = now();
        transaction!(self, |conn| {
            for record in records {
                diesel::insert_into(sync_records::table)
                    .values((
                        sync_records::integration_id.eq(integration_id),
                        sync_records::scope.eq(&record.scope),
                        sync_records::key.eq(&record.key),
                        sync_records::environment_id.eq(&record.environment_id),
                        sync_records::kind.eq(record.kind.as_str()),
                        sync_records::value_hash.eq(&record.hash),
                        sync_records::updated_at.eq(at),
                    ))
                    .on_conflict((
                        sync_records::integration_id,
                        sync_records::scope,
                        sync_records::key,
                    ))
                    .do_update()
                    .set((
                        sync_records::environment_id.eq(&record.environment_id),
                        sync_records::kind.eq(record.kind.as_str()),
                        sync_records::value_hash.eq(&record.hash),
                        sync_records::updated_at.eq(at),
                    ))
                    .execute(conn)
                    .await?;
            }
            for (scope, key) in removed {
                diesel::delete(
                    sync_records::table
                        .filter(sync_records::integration_id.eq(integration_id))
                        .filter(sync_records::scope.eq(scope))
                        .filter(sync_records::key.eq(key)),
                )
                .execute(conn)
                .await?;
            }
            Ok(())
        })
    }

    /// Queues a sync of the integration, unless one is already waiting to start. Returns the
    /// run's id and whether it is new.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn enqueue_sync(&self, integration_id: &str) -> Result<(String, bool), DbError> {
        transaction!(self, |conn| {
            enqueue_sync_on(&mut *conn, integration_id).await
        })
    }
}
