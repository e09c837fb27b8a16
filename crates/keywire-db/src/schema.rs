//! The diesel schema, written by hand so one file serves both backends.
//!
//! Only portable SQL types appear here: `Text` (also for UUIDs and JSON), `BigInt`, `Integer`,
//! `Bool`, `Timestamp` (UTC, read as [`chrono::NaiveDateTime`]), `Double` and `Binary`.
//! Keep it in step with both `migrations/sqlite` and `migrations/postgres`.

diesel::table! {
    /// People and machines that may call the API.
    users (id) {
        /// UUID, as text.
        id -> Text,
        /// Unique login name.
        name -> Text,
        /// Whether the user may administer the whole server.
        is_admin -> Bool,
        /// When the user was created (UTC).
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Bearer tokens; only their SHA-256 is stored.
    api_tokens (id) {
        /// UUID, as text.
        id -> Text,
        /// The owner; deleting the user deletes its tokens.
        user_id -> Text,
        /// A label chosen by the owner.
        name -> Text,
        /// The first few characters of the token, to tell tokens apart.
        prefix -> Text,
        /// Lowercase hex SHA-256 of the token.
        token_hash -> Text,
        /// When the token was created (UTC).
        created_at -> Timestamp,
        /// When the token last authenticated a request (UTC, updated at most once a minute).
        last_used_at -> Nullable<Timestamp>,
        /// After this instant (UTC) the token no longer authenticates.
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(api_tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, api_tokens);
