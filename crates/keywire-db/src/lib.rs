#![doc = include_str!("../README.md")]
//!
//! ## Code map
//!
//! - `db`: [`Db`], its pools, and the `with_conn!` / `transaction!` macros that run one query
//!   body on either backend.
//! - `database_url`: which backend a URL selects, and its password-free form.
//! - `migrations`: the embedded migrations and [`Db::migrate`].
//! - `schema`: the hand-written, portable diesel schema.
//! - `users`, `tokens`: the models and their queries.

mod authority;
mod crypto;
mod database_url;
mod db;
pub mod delivery;
mod entries;
mod error;
pub mod events;
mod integrations;
mod members;
mod migrations;
mod schema;
mod sync;
mod tokens;
mod users;
pub mod util;
mod workspaces;

pub use authority::{Access, Authority, Grant, authorities_json, parse_authorities};
pub use crypto::{Cipher, CryptoError, Rotated};
pub use db::{Backend, Db, DbOptions};
pub use entries::{
    CurrentValue, Entry, EntryChange, EntryInput, EntryKind, EntryState, EntryVersion,
    MAX_BULK_ITEMS, MAX_KEY_CHARS, MAX_NOTE_CHARS, MAX_VALUE_BYTES, UNDECRYPTABLE, check_key,
    check_note, check_value, is_undecryptable,
};
pub use error::DbError;
pub use events::{Event, EventFilter};
pub use integrations::{
    IntegrationChanges, IntegrationFilter, IntegrationSort, NewIntegration, StoredIntegration,
};
pub use members::{Member, NewRole, Role, RoleChanges};
pub use tokens::{
    ApiToken, IssuedToken, MAX_TOKEN_CHARS, MIN_TOKEN_CHARS, TOKEN_PREFIX, generate_token,
    hash_token,
};
pub use users::{
    BOOTSTRAP_ADMIN_NAME, BOOTSTRAP_TOKEN_NAME, MAX_USER_NAME_CHARS, User, check_user_name,
};
pub use util::{Page, PageRequest};
pub use workspaces::{Environment, NewEnvironment, Project, Workspace};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Servers share one `Db` across threads and spawn its futures: keep them all `Send`.
    #[test]
    fn db_and_its_futures_are_send_and_sync() {
        fn check(db: &Db) {
            assert_send(&db.ping());
            assert_send(&db.migrate());
            assert_send(&db.revert_all_migrations());
            assert_send(&db.table_names());
            assert_send(&db.bootstrap_admin(None));
            assert_send(&db.authenticate(""));
            assert_send(&db.create_user("", false));
            assert_send(&db.list_users());
            assert_send(&db.get_user(""));
            assert_send(&db.delete_user(""));
            assert_send(&db.create_token("", "", None));
            assert_send(&db.list_tokens(""));
            assert_send(&db.delete_token(""));
        }
        fn is_shareable<T: Send + Sync + Clone + 'static>() {}
        is_shareable::<Db>();
        let _: fn(&Db) = check;
    }
}
