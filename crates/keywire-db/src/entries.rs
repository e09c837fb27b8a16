//! Secrets and variables: the entries of a project, each with a versioned value per
//! environment.
//!
//! One code path serves both kinds ([`EntryKind`]); they differ only in storage (secret values
//! are sealed with the master key, bound to their `entry_versions` row; variable values are
//! plain) and in the names of their events.
//!
//! Version numbers are unique and gap-free per entry and environment: a writer takes a row lock
//! on the entry (an `UPDATE` of it, which is portable; on SQLite the `BEGIN IMMEDIATE` write
//! transaction already serialises writers) before it reads the highest version, and the unique
//! constraint on `(entry_id, environment_id, version)` backs that up: a transaction that still
//! loses a race is retried a few times and then fails with [`DbError::Conflict`]. Keys of one
//! request are processed in key order, so concurrent bulk writes lock rows in the same order
//! and cannot deadlock one another.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use keywire_core::{Actor, EventSource, EventType, Severity};
use serde_json::json;

use crate::crypto::Cipher;
use crate::db::{transaction, with_conn};
use crate::events::{Event, record_event};
use crate::schema::{entries, entry_versions, environments};
use crate::tokens::{new_id, now};
use crate::util::{Page, PageRequest, decode_cursor};
use crate::{Db, DbError, Project};

/// Longest key, in characters.
pub const MAX_KEY_CHARS: usize = 256;
/// Largest value, in bytes of UTF-8.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 1000;
/// Most entries one bulk request may set.
pub const MAX_BULK_ITEMS: usize = 100;
/// Part of the message of every [`DbError::Other`] about a stored value that does not decrypt;
/// see [`is_undecryptable`].
pub const UNDECRYPTABLE: &str = "cannot be decrypted with the configured master key";
/// How often a write that lost a race is tried in all before it fails with a conflict.
const MAX_ATTEMPTS: u32 = 5;

/// Whether `error` says a stored value could not be decrypted (wrong master key, damaged
/// value, or a ciphertext moved to another row). Its message names the key, environment and
/// version, never the value.
pub fn is_undecryptable(error: &DbError) -> bool {
    matches!(error, DbError::Other(message) if message.contains(UNDECRYPTABLE))
}

/// Checks a key: 1 to [`MAX_KEY_CHARS`] characters matching `^[A-Za-z_][A-Za-z0-9_]*$`.
/// Returns a message for the field.
pub fn check_key(key: &str) -> Result<(), String> {
    const RULE: &str = "must match ^[A-Za-z_][A-Za-z0-9_]*$ (letters, digits and underscores, not starting with a digit)";
    if key.is_empty() {
        return Err(format!("must not be empty; it {RULE}"));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(format!("must be at most {MAX_KEY_CHARS} characters"));
    }
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(RULE.to_owned());
    }
    Ok(())
}

/// Checks a value's size. The message never repeats the value.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "the value is {} bytes; at most {MAX_VALUE_BYTES} bytes are allowed",
            value.len()
        ));
    }
    Ok(())
}

/// Checks a note: at most [`MAX_NOTE_CHARS`] characters.
pub fn check_note(note: &str) -> Result<(), String> {
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(format!("must be at most {MAX_NOTE_CHARS} characters"));
    }
    Ok(())
}

/// Whether an entry is a secret (sealed at rest, values shown only with `READ_SECRET`) or a
/// variable (stored plain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A secret.
    Secret,
    /// A variable.
    Variable,
}

impl EntryKind {
    /// The stored name: `secret` or `variable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::Secret => "secret",
            EntryKind::Variable => "variable",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<EntryKind> {
        match name {
            "secret" => Some(EntryKind::Secret),
            "variable" => Some(EntryKind::Variable),
            _ => None,
        }
    }

    /// `Secret` or `Variable`, for titles and messages.
    pub const fn noun(self) -> &'static str {
        match self {
            EntryKind::Secret => "Secret",
            EntryKind::Variable => "Variable",
        }
    }

    /// The event type of a new key.
    pub const fn added(self) -> EventType {
        match self {
            EntryKind::Secret => EventType::SecretAdded,
            EntryKind::Variable => EventType::VariableAdded,
        }
    }

    /// The event type of a changed value or note.
    pub const fn updated(self) -> EventType {
        match self {
            EntryKind::Secret => EventType::SecretUpdated,
            EntryKind::Variable => EventType::VariableUpdated,
        }
    }

    /// The event type of a deleted key or value.
    pub const fn deleted(self) -> EventType {
        match self {
            EntryKind::Secret => EventType::SecretDeleted,
            EntryKind::Variable => EventType::VariableDeleted,
        }
    }

    /// The event source.
    pub const fn source(self) -> EventSource {
        match self {
            EntryKind::Secret => EventSource::Secret,
            EntryKind::Variable => EventSource::Variable,
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to set on one key. `Debug` never shows the values.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EntryInput {
    /// The key.
    pub key: String,
    /// New values by environment slug; environments not named keep their value.
    pub values: BTreeMap<String, String>,
    /// `None`: keep the note; `Some(None)`: clear it; `Some(Some(text))`: set it.
    pub note: Option<Option<String>>,
}

impl fmt::Debug for EntryInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryInput")
            .field("key", &self.key)
            .field("environments", &self.values.keys().collect::<Vec<_>>())
            .field("note", &self.note)
            .finish_non_exhaustive()
    }
}

/// An entry row: a secret or variable of a project, without its values.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = entries)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Entry {
    /// UUID.
    pub id: String,
    /// The project.
    pub project_id: String,
    /// `secret` or `variable`.
    pub kind: String,
    /// The key.
    pub key: String,
    /// A note for people.
    pub note: Option<String>,
    /// Who created it (user id).
    pub created_by: Option<String>,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change of a value or the note (UTC).
    pub updated_at: NaiveDateTime,
}

/// The current value of an entry in one environment. `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct CurrentValue {
    /// The environment's id.
    pub environment_id: String,
    /// The current (highest) version.
    pub version: i64,
    /// When that version was written (UTC).
    pub updated_at: NaiveDateTime,
    /// Who wrote it (user id).
    pub updated_by: Option<String>,
    /// The value in clear, only when it was asked for.
    pub value: Option<String>,
}

impl fmt::Debug for CurrentValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentValue")
            .field("environment_id", &self.environment_id)
            .field("version", &self.version)
            .field("updated_at", &self.updated_at)
            .field("updated_by", &self.updated_by)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// An entry with its current value per environment (by environment slug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryState {
    /// The entry.
    pub entry: Entry,
    /// Environments that have a value, by slug.
    pub values: BTreeMap<String, CurrentValue>,
}

/// What one write did to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryChange {
    /// The entry after the write (no values in clear).
    pub state: EntryState,
    /// The key was new.
    pub created: bool,
    /// The environments that got a new version: slug → version.
    pub versions: BTreeMap<String, i64>,
    /// The note changed.
    pub note_changed: bool,
}

impl EntryChange {
    /// Whether anything changed (and an event was recorded).
    pub fn changed(&self) -> bool {
        self.created || self.note_changed || !self.versions.is_empty()
    }
}

/// One version of an entry's value in one environment. `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct EntryVersion {
    /// The row's id.
    pub id: String,
    /// 1, 2, 3...
    pub version: i64,
    /// When it was written (UTC).
    pub created_at: NaiveDateTime,
    /// Who wrote it (user id).
    pub created_by: Option<String>,
    /// The value in clear, only when it was asked for.
    pub value: Option<String>,
}

impl fmt::Debug for EntryVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryVersion")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("created_at", &self.created_at)
            .field("created_by", &self.created_by)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A version row without its value: (entry id, environment id, row id, version, when, who).
type VersionMeta = (String, String, String, i64, NaiveDateTime, Option<String>);

/// A current version row: [`VersionMeta`] plus the environment's slug.
type CurrentRow = (
    String,
    String,
    String,
    i64,
    NaiveDateTime,
    Option<String>,
    String,
);

/// The associated data a secret value is sealed for: its row.
fn aad(row_id: &str) -> String {
    format!("entry_versions/{row_id}")
}

fn no_environment(slug: &str) -> DbError {
    let shown: String = slug.chars().take(64).collect();
    DbError::InvalidInput(format!("the project has no environment `{shown}`"))
}

fn bad_cursor() -> DbError {
    DbError::InvalidInput("the cursor is not valid".into())
}

/// Decides the stored form of a value for a new row.
fn stored_form(kind: EntryKind, cipher: &Cipher, row_id: &str, value: &str) -> String {
    match kind {
        EntryKind::Secret => cipher.seal(value.as_bytes(), &aad(row_id)),
        EntryKind::Variable => value.to_owned(),
    }
}

/// Where a stored value sits, for the message when it cannot be opened.
struct Place<'a> {
    key: &'a str,
    environment: &'a str,
    version: i64,
}

/// The clear value of a stored one; a secret that does not open is a clear error naming the
/// key, environment and version, never the value.
fn clear_value(
    kind: EntryKind,
    cipher: &Cipher,
    row_id: &str,
    stored: String,
    place: &Place<'_>,
) -> Result<String, DbError> {
    match kind {
        EntryKind::Variable => Ok(stored),
        EntryKind::Secret => cipher
            .open_text(&stored, &aad(row_id))
            .map(|clear| clear.as_str().to_owned())
            .map_err(|why| {
                DbError::Other(format!(
                    "the value of {} in {} (version {}) {UNDECRYPTABLE}: {why}",
                    place.key, place.environment, place.version
                ))
            }),
    }
}

/// Rejects an input the database layer must never store, whatever the caller checked.
fn check_inputs(items: &[EntryInput]) -> Result<(), DbError> {
    let mut seen = std::collections::HashSet::new();
    for item in items {
        check_key(&item.key).map_err(|why| {
            DbError::InvalidInput(format!("key `{}`: {why}", shown_key(&item.key)))
        })?;
        if !seen.insert(item.key.as_str()) {
            return Err(DbError::InvalidInput(format!(
                "the key `{}` is given twice",
                item.key
            )));
        }
        for (environment, value) in &item.values {
            check_value(value).map_err(|why| {
                DbError::InvalidInput(format!(
                    "{} in `{}`: {why}",
                    item.key,
                    shown_key(environment)
                ))
            })?;
        }
        if let Some(Some(note)) = &item.note {
            check_note(note)
                .map_err(|why| DbError::InvalidInput(format!("the note of {}: {why}", item.key)))?;
        }
    }
    Ok(())
}

fn shown_key(key: &str) -> String {
    key.chars().take(64).collect()
}

/// Waits a little before trying a transaction again, longer after each attempt, with jitter so
/// that the losers of one race do not collide again.
async fn back_off(attempt: u32) {
    let mut jitter = [0_u8; 1];
    let _ = getrandom::fill(&mut jitter);
    let millis = u64::from(attempt) * 10 + u64::from(jitter[0] % 20);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// Version rows (no values) that are the current one of their entry and environment, for
/// some entries, with their environment's slug.
macro_rules! current_versions {
    ($conn:expr, $entry_ids:expr) => {{
        let newer = diesel::alias!(entry_versions as newer);
        entry_versions::table
            .inner_join(environments::table)
            .filter(entry_versions::entry_id.eq_any($entry_ids))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                newer
                    .filter(
                        newer
                            .field(entry_versions::entry_id)
                            .eq(entry_versions::entry_id),
                    )
                    .filter(
                        newer
                            .field(entry_versions::environment_id)
                            .eq(entry_versions::environment_id),
                    )
                    .filter(
                        newer
                            .field(entry_versions::version)
                            .gt(entry_versions::version),
                    ),
            )))
            .select((
                entry_versions::entry_id,
                entry_versions::environment_id,
                entry_versions::id,
                entry_versions::version,
                entry_versions::created_at,
                entry_versions::created_by,
                environments::slug,
            ))
            .load::<CurrentRow>(&mut *$conn)
            .await?
    }};
}

/// The states of `entries` from their current version rows (values not loaded).
fn states(
    entries: Vec<Entry>,
    rows: Vec<CurrentRow>,
) -> (Vec<EntryState>, HashMap<String, (usize, String)>) {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<EntryState> = entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            index.insert(entry.id.clone(), i);
            EntryState {
                entry,
                values: BTreeMap::new(),
            }
        })
        .collect();
    // row id → (position of its entry, environment slug), for filling in values later.
    let mut rows_by_id = HashMap::new();
    for (entry_id, environment_id, row_id, version, created_at, created_by, slug) in rows {
        if let Some(&i) = index.get(&entry_id) {
            rows_by_id.insert(row_id, (i, slug.clone()));
            out[i].values.insert(
                slug,
                CurrentValue {
                    environment_id,
                    version,
                    updated_at: created_at,
                    updated_by: created_by,
                    value: None,
                },
            );
        }
    }
    (out, rows_by_id)
}

impl Db {
    /// Creates or updates entries of one kind in a project, all in one transaction: one bad
    /// key or environment rejects everything and writes nothing.
    ///
    /// For each item, the entry is created if new; each environment whose value differs from
    /// the current one gets a new version (the highest plus one; a value equal to the current
    /// one adds none). Secret values are sealed with `cipher`, bound to their row; variable
    /// values are stored plain. One event per key whose entry, values or note changed:
    /// `SECRET_ADDED` / `VARIABLE_ADDED` for a new key, `*_UPDATED` otherwise, with the
    /// changed environments and a payload `{"project", "key", "environments": {slug:
    /// version}}` (never a value). Results are in the order of `items`.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] for a bad key, value size, note, a key given twice or an
    /// environment the project does not have; [`DbError::Conflict`] when concurrent writers
    /// still collide after a few attempts; or any [`DbError`].
    pub async fn set_entries(
        &self,
        project: &Project,
        kind: EntryKind,
        items: &[EntryInput],
        cipher: &Cipher,
        actor: &Actor,
    ) -> Result<Vec<EntryChange>, DbError> {
        self.write_entries(project, kind, items, cipher, actor, None)
            .await
    }

    /// Sets the value of `key` in `environment` back to the value of an earlier `version`:
    /// a new version holding that value, recorded as `*_UPDATED` with `rolledBackTo` in the
    /// payload. Rolling back to the value the environment has now changes nothing.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] for an unknown key or version, [`DbError::InvalidInput`] for an
    /// unknown environment, a decryption failure as [`DbError::Other`], or any [`DbError`].
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per part of the request"
    )]
    pub async fn rollback_entry(
        &self,
        project: &Project,
        kind: EntryKind,
        key: &str,
        environment: &str,
        version: i64,
        cipher: &Cipher,
        actor: &Actor,
    ) -> Result<EntryChange, DbError> {
        let (entry, environment_id) = self
            .entry_and_environment(project, kind, key, environment)
            .await?;
        let (row_id, stored): (String, String) = with_conn!(self, |conn| {
            entry_versions::table
                .filter(entry_versions::entry_id.eq(&entry.id))
                .filter(entry_versions::environment_id.eq(&environment_id))
                .filter(entry_versions::version.eq(version))
                .select((entry_versions::id, entry_versions::value))
                .first(conn)
                .await?
        });
        let place = Place {
            key,
            environment,
            version,
        };
        let value = clear_value(kind, cipher, &row_id, stored, &place)?;
        let item = EntryInput {
            key: key.to_owned(),
            values: BTreeMap::from([(environment.to_owned(), value)]),
            note: None,
        };
        let mut changes = self
            .write_entries(
                project,
                kind,
                std::slice::from_ref(&item),
                cipher,
                actor,
                Some(version),
            )
            .await?;
        changes
            .pop()
            .ok_or_else(|| DbError::Other("a write of one key returned nothing".into()))
    }

    /// [`Db::set_entries`], retried when a concurrent writer won a race.
    async fn write_entries(
        &self,
        project: &Project,
        kind: EntryKind,
        items: &[EntryInput],
        cipher: &Cipher,
        actor: &Actor,
        rolled_back_to: Option<i64>,
    ) -> Result<Vec<EntryChange>, DbError> {
        check_inputs(items)?;
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| items[a].key.cmp(&items[b].key));
        let mut attempt = 1;
        loop {
            match self
                .write_once(project, kind, items, &order, cipher, actor, rolled_back_to)
                .await
            {
                Err(DbError::Conflict(why)) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %why, "entry write lost a race; trying again");
                    back_off(attempt).await;
                    attempt += 1;
                }
                Err(DbError::Conflict(why)) => {
                    tracing::warn!(attempts = attempt, error = %why, "entry write kept losing races");
                    return Err(DbError::Conflict(format!(
                        "concurrent changes to the same {}s kept colliding; try again",
                        kind.as_str()
                    )));
                }
                other => return other,
            }
        }
    }

    /// One attempt of [`Db::write_entries`]: one transaction.
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per part of the request"
    )]
    async fn write_once(
        &self,
        project: &Project,
        kind: EntryKind,
        items: &[EntryInput],
        order: &[usize],
        cipher: &Cipher,
        actor: &Actor,
        rolled_back_to: Option<i64>,
    ) -> Result<Vec<EntryChange>, DbError> {
        let mut results: Vec<Option<EntryChange>> = vec![None; items.len()];
        transaction!(self, |conn| {
            let known: Vec<(String, String)> = environments::table
                .filter(environments::project_id.eq(&project.id))
                .select((environments::slug, environments::id))
                .load(conn)
                .await?;
            let known: HashMap<String, String> = known.into_iter().collect();
            for item in items {
                if let Some(slug) = item.values.keys().find(|slug| !known.contains_key(*slug)) {
                    return Err(no_environment(slug));
                }
            }
            for &i in order {
                let item = &items[i];
                let at = now();
                let candidate = Entry {
                    id: new_id(),
                    project_id: project.id.clone(),
                    kind: kind.as_str().to_owned(),
                    key: item.key.clone(),
                    note: item.note.clone().flatten(),
                    created_by: Some(actor.id.clone()),
                    created_at: at,
                    updated_at: at,
                };
                let inserted = diesel::insert_into(entries::table)
                    .values(&candidate)
                    .on_conflict((entries::project_id, entries::kind, entries::key))
                    .do_nothing()
                    .execute(conn)
                    .await?;
                let created = inserted == 1;
                let this_entry = entries::table
                    .filter(entries::project_id.eq(&project.id))
                    .filter(entries::kind.eq(kind.as_str()))
                    .filter(entries::key.eq(&item.key));
                if !created {
                    // The row lock that queues concurrent writers of this key (PostgreSQL);
                    // it changes nothing.
                    diesel::update(this_entry)
                        .set(entries::updated_at.eq(entries::updated_at))
                        .execute(conn)
                        .await?;
                }
                let mut entry: Entry = this_entry.select(Entry::as_select()).first(conn).await?;

                let mut versions: BTreeMap<String, i64> = BTreeMap::new();
                let mut changed_ids: Vec<String> = Vec::new();
                for (slug, value) in &item.values {
                    let environment_id = &known[slug];
                    let current: Option<(String, i64, String)> = entry_versions::table
                        .filter(entry_versions::entry_id.eq(&entry.id))
                        .filter(entry_versions::environment_id.eq(environment_id))
                        .order(entry_versions::version.desc())
                        .select((
                            entry_versions::id,
                            entry_versions::version,
                            entry_versions::value,
                        ))
                        .first(conn)
                        .await
                        .optional()?;
                    let next = match current {
                        None => 1,
                        Some((row_id, version, stored)) => {
                            let same = match kind {
                                EntryKind::Variable => stored == *value,
                                // A current value that does not open is replaced, not compared.
                                EntryKind::Secret => cipher
                                    .open(&stored, &aad(&row_id))
                                    .is_ok_and(|clear| clear.as_slice() == value.as_bytes()),
                            };
                            if same {
                                continue;
                            }
                            version + 1
                        }
                    };
                    let row_id = new_id();
                    diesel::insert_into(entry_versions::table)
                        .values((
                            entry_versions::id.eq(&row_id),
                            entry_versions::entry_id.eq(&entry.id),
                            entry_versions::environment_id.eq(environment_id),
                            entry_versions::version.eq(next),
                            entry_versions::value.eq(stored_form(kind, cipher, &row_id, value)),
                            entry_versions::created_by.eq(&actor.id),
                            entry_versions::created_at.eq(at),
                        ))
                        .execute(conn)
                        .await?;
                    versions.insert(slug.clone(), next);
                    changed_ids.push(environment_id.clone());
                }

                let note_changed =
                    !created && item.note.as_ref().is_some_and(|note| *note != entry.note);
                if created || note_changed || !versions.is_empty() {
                    if let Some(note) = &item.note {
                        entry.note.clone_from(note);
                    }
                    entry.updated_at = at;
                    if !created {
                        diesel::update(entries::table.find(&entry.id))
                            .set((entries::note.eq(&entry.note), entries::updated_at.eq(at)))
                            .execute(conn)
                            .await?;
                    }
                    let (event_type, verb) = match (created, rolled_back_to) {
                        (true, _) => (kind.added(), "added"),
                        (false, Some(_)) => (kind.updated(), "rolled back"),
                        (false, None) => (kind.updated(), "updated"),
                    };
                    let mut payload = json!({
                        "project": project.slug,
                        "key": entry.key,
                        "environments": versions,
                    });
                    if note_changed {
                        payload["noteChanged"] = json!(true);
                    }
                    if let Some(version) = rolled_back_to {
                        payload["rolledBackTo"] = json!(version);
                    }
                    let event = Event::new(
                        &project.workspace_id,
                        event_type,
                        kind.source(),
                        actor,
                        format!("{} {} {verb} in {}", kind.noun(), entry.key, project.name),
                    )
                    .project(&project.id)
                    .environments(&changed_ids)
                    .payload(payload);
                    record_event!(conn, &event);
                }

                let rows = current_versions!(conn, [entry.id.clone()]);
                let (mut state, _) = states(vec![entry], rows);
                results[i] = Some(EntryChange {
                    state: state.remove(0),
                    created,
                    versions,
                    note_changed,
                });
            }
            Ok(())
        })?;
        Ok(results.into_iter().flatten().collect())
    }

    /// Which of `keys` exist as entries of this kind in the project.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn existing_entry_keys(
        &self,
        project: &Project,
        kind: EntryKind,
        keys: &[String],
    ) -> Result<Vec<String>, DbError> {
        with_conn!(self, |conn| {
            Ok(entries::table
                .filter(entries::project_id.eq(&project.id))
                .filter(entries::kind.eq(kind.as_str()))
                .filter(entries::key.eq_any(keys))
                .select(entries::key)
                .load(conn)
                .await?)
        })
    }

    /// Entries of one kind in a project by key, one page at a time, with their current version
    /// per environment, and the current values in clear when `reveal` is set.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] for a foreign cursor, a decryption failure as
    /// [`DbError::Other`], or any [`DbError`].
    pub async fn list_entries(
        &self,
        project: &Project,
        kind: EntryKind,
        reveal: bool,
        cipher: &Cipher,
        page: &PageRequest,
    ) -> Result<Page<EntryState>, DbError> {
        let after = page
            .after
            .as_deref()
            .map(|c| decode_cursor(c).ok_or_else(bad_cursor))
            .transpose()?;
        let limit = page.limit();
        let (rows, versions) = with_conn!(self, |conn| {
            let mut query = entries::table
                .filter(entries::project_id.eq(&project.id))
                .filter(entries::kind.eq(kind.as_str()))
                .into_boxed();
            if let Some(after) = &after {
                query = query.filter(entries::key.gt(after));
            }
            let rows: Vec<Entry> = query
                .order(entries::key.asc())
                .limit(limit + 1)
                .select(Entry::as_select())
                .load(conn)
                .await?;
            let ids: Vec<String> = rows
                .iter()
                .take(limit as usize)
                .map(|e| e.id.clone())
                .collect();
            let versions = if ids.is_empty() {
                Vec::new()
            } else {
                current_versions!(conn, &ids)
            };
            (rows, versions)
        });
        let more = rows.len() as i64 > limit;
        let mut rows = rows;
        rows.truncate(limit as usize);
        let (mut items, rows_by_id) = states(rows, versions);
        if reveal {
            self.reveal_current(kind, cipher, &mut items, rows_by_id)
                .await?;
        }
        let next_cursor = if more {
            items
                .last()
                .map(|s| crate::util::encode_cursor(&s.entry.key))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// One entry by key with its current version per environment, and values when `reveal`.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`], a decryption failure as [`DbError::Other`], or any [`DbError`].
    pub async fn get_entry(
        &self,
        project: &Project,
        kind: EntryKind,
        key: &str,
        reveal: bool,
        cipher: &Cipher,
    ) -> Result<EntryState, DbError> {
        let (entry, versions) = with_conn!(self, |conn| {
            let entry: Entry = entries::table
                .filter(entries::project_id.eq(&project.id))
                .filter(entries::kind.eq(kind.as_str()))
                .filter(entries::key.eq(key))
                .select(Entry::as_select())
                .first(conn)
                .await?;
            let versions = current_versions!(conn, [entry.id.clone()]);
            (entry, versions)
        });
        let (mut items, rows_by_id) = states(vec![entry], versions);
        if reveal {
            self.reveal_current(kind, cipher, &mut items, rows_by_id)
                .await?;
        }
        Ok(items.remove(0))
    }

    /// Fills in the clear current values of `items`.
    async fn reveal_current(
        &self,
        kind: EntryKind,
        cipher: &Cipher,
        items: &mut [EntryState],
        rows_by_id: HashMap<String, (usize, String)>,
    ) -> Result<(), DbError> {
        let ids: Vec<String> = rows_by_id.keys().cloned().collect();
        for (row_id, stored) in self.stored_values(&ids).await? {
            let Some((i, slug)) = rows_by_id.get(&row_id) else {
                continue;
            };
            let state = &mut items[*i];
            let Some(current) = state.values.get_mut(slug) else {
                continue;
            };
            let place = Place {
                key: &state.entry.key,
                environment: slug,
                version: current.version,
            };
            current.value = Some(clear_value(kind, cipher, &row_id, stored, &place)?);
        }
        Ok(())
    }

    /// The stored values (ciphertexts for secrets) of some version rows: (row id, value).
    async fn stored_values(&self, ids: &[String]) -> Result<Vec<(String, String)>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        with_conn!(self, |conn| {
            Ok(entry_versions::table
                .filter(entry_versions::id.eq_any(ids))
                .select((entry_versions::id, entry_versions::value))
                .load(conn)
                .await?)
        })
    }

    /// The current value, in clear, of every entry of a project in these environments: the
    /// desired state of a sync. (kind, key, environment id, value), sorted by kind and key.
    ///
    /// # Errors
    ///
    /// A secret that does not decrypt (naming key, environment and version), or any [`DbError`].
    pub async fn current_values(
        &self,
        project_id: &str,
        environment_ids: &[String],
        cipher: &Cipher,
    ) -> Result<Vec<(EntryKind, String, String, String)>, DbError> {
        if environment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let (rows, versions) = with_conn!(self, |conn| {
            let rows: Vec<Entry> = entries::table
                .filter(entries::project_id.eq(project_id))
                .order((entries::kind.asc(), entries::key.asc()))
                .select(Entry::as_select())
                .load(conn)
                .await?;
            let ids: Vec<String> = rows.iter().map(|e| e.id.clone()).collect();
            let versions: Vec<CurrentRow> = if ids.is_empty() {
                Vec::new()
            } else {
                current_versions!(conn, &ids)
            };
            (rows, versions)
        });
        let entries: HashMap<&str, &Entry> = rows.iter().map(|e| (e.id.as_str(), e)).collect();
        let wanted: Vec<&CurrentRow> = versions
            .iter()
            .filter(|v| environment_ids.contains(&v.1))
            .collect();
        let row_ids: Vec<String> = wanted.iter().map(|v| v.2.clone()).collect();
        let mut stored: HashMap<String, String> =
            self.stored_values(&row_ids).await?.into_iter().collect();
        let mut out = Vec::with_capacity(wanted.len());
        for (entry_id, environment_id, row_id, version, _, _, slug) in wanted {
            let (Some(entry), Some(value)) =
                (entries.get(entry_id.as_str()), stored.remove(row_id))
            else {
                continue;
            };
            let Some(kind) = EntryKind::parse(&entry.kind) else {
                continue;
            };
            let place = Place {
                key: &entry.key,
                environment: slug,
                version: *version,
            };
            let clear = clear_value(kind, cipher, row_id, value, &place)?;
            out.push((kind, entry.key.clone(), environment_id.clone(), clear));
        }
        out.sort_by(|a, b| (a.0.as_str(), &a.1, &a.2).cmp(&(b.0.as_str(), &b.1, &b.2)));
        Ok(out)
    }

    /// The entry `key` and the id of the environment `environment` of a project.
    async fn entry_and_environment(
        &self,
        project: &Project,
        kind: EntryKind,
        key: &str,
        environment: &str,
    ) -> Result<(Entry, String), DbError> {
        let environment_id = match self.environment_by_slug(&project.id, environment).await {
            Ok(found) => found.id,
            Err(DbError::NotFound) => return Err(no_environment(environment)),
            Err(other) => return Err(other),
        };
        let entry = with_conn!(self, |conn| {
            entries::table
                .filter(entries::project_id.eq(&project.id))
                .filter(entries::kind.eq(kind.as_str()))
                .filter(entries::key.eq(key))
                .select(Entry::as_select())
                .first(conn)
                .await?
        });
        Ok((entry, environment_id))
    }

    /// The versions of `key`'s value in `environment`, newest first, one page at a time;
    /// values in clear only when `reveal`.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] for an unknown key, [`DbError::InvalidInput`] for an unknown
    /// environment or a foreign cursor, a decryption failure as [`DbError::Other`], or any
    /// [`DbError`].
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per part of the request"
    )]
    pub async fn entry_versions(
        &self,
        project: &Project,
        kind: EntryKind,
        key: &str,
        environment: &str,
        reveal: bool,
        cipher: &Cipher,
        page: &PageRequest,
    ) -> Result<Page<EntryVersion>, DbError> {
        let before: Option<i64> = page
            .after
            .as_deref()
            .map(|c| {
                decode_cursor(c)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(bad_cursor)
            })
            .transpose()?;
        let limit = page.limit();
        let (entry, environment_id) = self
            .entry_and_environment(project, kind, key, environment)
            .await?;
        let rows: Vec<VersionMeta> = with_conn!(self, |conn| {
            let mut query = entry_versions::table
                .filter(entry_versions::entry_id.eq(&entry.id))
                .filter(entry_versions::environment_id.eq(&environment_id))
                .into_boxed();
            if let Some(before) = before {
                query = query.filter(entry_versions::version.lt(before));
            }
            query
                .order(entry_versions::version.desc())
                .limit(limit + 1)
                .select((
                    entry_versions::entry_id,
                    entry_versions::environment_id,
                    entry_versions::id,
                    entry_versions::version,
                    entry_versions::created_at,
                    entry_versions::created_by,
                ))
                .load(conn)
                .await?
        });
        let mut page = Page::from_rows(rows, limit, |row| row.3.to_string());
        let mut values: HashMap<String, String> = if reveal {
            let ids: Vec<String> = page.items.iter().map(|row| row.2.clone()).collect();
            self.stored_values(&ids).await?.into_iter().collect()
        } else {
            HashMap::new()
        };
        let items = std::mem::take(&mut page.items)
            .into_iter()
            .map(|(_, _, id, version, created_at, created_by)| {
                let value = match values.remove(&id) {
                    Some(stored) => {
                        let place = Place {
                            key,
                            environment,
                            version,
                        };
                        Some(clear_value(kind, cipher, &id, stored, &place)?)
                    }
                    None => None,
                };
                Ok(EntryVersion {
                    id,
                    version,
                    created_at,
                    created_by,
                    value,
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    /// Deletes a key with all its values; records `SECRET_DELETED` / `VARIABLE_DELETED`
    /// (severity `WARN`) with the environments that had a value.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] for an unknown key, or any [`DbError`].
    pub async fn delete_entry(
        &self,
        project: &Project,
        kind: EntryKind,
        key: &str,
        actor: &Actor,
    ) -> Result<(), DbError> {
        transaction!(self, |conn| {
            let entry: Entry = entries::table
                .filter(entries::project_id.eq(&project.id))
                .filter(entries::kind.eq(kind.as_str()))
                .filter(entries::key.eq(key))
                .select(Entry::as_select())
                .first(conn)
                .await?;
            let had: Vec<(String, String)> = entry_versions::table
                .inner_join(environments::table)
                .filter(entry_versions::entry_id.eq(&entry.id))
                .select((environments::id, environments::slug))
                .distinct()
                .order(environments::slug.asc())
                .load(conn)
                .await?;
            let ids: Vec<&str> = had.iter().map(|(id, _)| id.as_str()).collect();
            let slugs: Vec<&str> = had.iter().map(|(_, slug)| slug.as_str()).collect();
            let event = Event::new(
                &project.workspace_id,
                kind.deleted(),
                kind.source(),
                actor,
                format!(
                    "{} {} deleted from {}",
                    kind.noun(),
                    entry.key,
                    project.name
                ),
            )
            .project(&project.id)
            .environments(&ids)
            .severity(Severity::Warn)
            .payload(json!({
                "project": project.slug,
                "key": entry.key,
                "environments": slugs,
                "keyDeleted": true,
            }));
            record_event!(conn, &event);
            diesel::delete(entries::table.find(&entry.id))
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// Deletes the value of `key` in one environment, with all its versions (the key stays);
    /// records `SECRET_DELETED` / `VARIABLE_DELETED` (severity `WARN`) with that environment.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] when the key does not exist or has no value there,
    /// [`DbError::InvalidInput`] for an unknown environment, or any [`DbError`].
    pub async fn delete_entry_value(
        &self,
        project: &Project,
        kind: EntryKind,
        key: &str,
        environment: &str,
        actor: &Actor,
    ) -> Result<(), DbError> {
        let (entry, environment_id) = self
            .entry_and_environment(project, kind, key, environment)
            .await?;
        transaction!(self, |conn| {
            let at = now();
            // Takes the entry's row lock first, as writers do.
            let locked = diesel::update(entries::table.find(&entry.id))
                .set(entries::updated_at.eq(at))
                .execute(conn)
                .await?;
            if locked == 0 {
                return Err(DbError::NotFound);
            }
            let removed = diesel::delete(
                entry_versions::table
                    .filter(entry_versions::entry_id.eq(&entry.id))
                    .filter(entry_versions::environment_id.eq(&environment_id)),
            )
            .execute(conn)
            .await?;
            if removed == 0 {
                return Err(DbError::NotFound);
            }
            let event = Event::new(
                &project.workspace_id,
                kind.deleted(),
                kind.source(),
                actor,
                format!(
                    "{} {} deleted from {environment} of {}",
                    kind.noun(),
                    entry.key,
                    project.name
                ),
            )
            .project(&project.id)
            .environments(&[&environment_id])
            .severity(Severity::Warn)
            .payload(json!({
                "project": project.slug,
                "key": entry.key,
                "environments": [environment],
                "keyDeleted": false,
            }));
            record_event!(conn, &event);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_rule() {
        for good in ["A", "_", "DATABASE_URL", "a1_b2", "_x9"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "é", "A.B", "A$"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        assert!(check_key(&"K".repeat(MAX_KEY_CHARS)).is_ok());
        assert!(check_key(&"K".repeat(MAX_KEY_CHARS + 1)).is_err());
    }

    #[test]
    fn size_messages_do_not_echo_the_value() {
        let value = "v".repeat(MAX_VALUE_BYTES + 1);
        let message = check_value(&value).unwrap_err();
        assert!(!message.contains("vvvv"), "{message}");
        assert!(check_value(&"v".repeat(MAX_VALUE_BYTES)).is_ok());
        assert!(check_note(&"n".repeat(MAX_NOTE_CHARS + 1)).is_err());
    }

    #[test]
    fn debug_never_shows_values() {
        let input = EntryInput {
            key: "K".into(),
            values: BTreeMap::from([("dev".into(), "hunter2".into())]),
            note: None,
        };
        assert!(!format!("{input:?}").contains("hunter2"));
        let at = chrono::DateTime::from_timestamp(0, 0).unwrap().naive_utc();
        let current = CurrentValue {
            environment_id: "e".into(),
            version: 1,
            updated_at: at,
            updated_by: None,
            value: Some("hunter2".into()),
        };
        assert!(!format!("{current:?}").contains("hunter2"));
        let version = EntryVersion {
            id: "r".into(),
            version: 1,
            created_at: at,
            created_by: None,
            value: Some("hunter2".into()),
        };
        assert!(!format!("{version:?}").contains("hunter2"));
    }

    #[test]
    fn kinds_round_trip() {
        for kind in [EntryKind::Secret, EntryKind::Variable] {
            assert_eq!(EntryKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EntryKind::Secret.added(), EventType::SecretAdded);
        assert_eq!(EntryKind::Variable.deleted(), EventType::VariableDeleted);
    }
}
