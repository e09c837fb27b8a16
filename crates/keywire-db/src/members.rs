//! Workspace roles (sets of authorities, optionally limited to some projects) and memberships
//! (which users belong to a workspace, holding which roles).
//!
//! Rules kept here, inside the transactions, so no race breaks them:
//!
//! - the built-in admin role (`is_admin_role`) cannot be deleted, lose `WORKSPACE_ADMIN` or be
//!   limited to projects;
//! - the last member holding the admin role can neither be removed nor lose it.
//!
//! Both come back as [`DbError::Conflict`] with a message meant for people. Every change records
//! its event (`WORKSPACE_ROLE_*`, `INVITED_TO_WORKSPACE`, `WORKSPACE_MEMBERSHIP_UPDATED`,
//! `REMOVED_FROM_WORKSPACE`, `LEFT_WORKSPACE`) in the same transaction; payloads hold names and
//! slugs only.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use keywire_core::{Actor, EventSource, EventType, Severity};
use serde_json::json;

use crate::authority::{Authority, authorities_json, parse_authorities};
use crate::db::{transaction, with_conn};
use crate::events::{Event, record_event};
use crate::schema::{member_roles, projects, users, workspace_members, workspace_roles};
use crate::tokens::{new_id, now};
use crate::util::{Page, PageRequest, decode_cursor, first_free_slug, slugify};
use crate::{Db, DbError, User, Workspace};

/// A workspace role: a named set of authorities, optionally limited to some projects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// UUID.
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// Unique within the workspace, stable across renames.
    pub slug: String,
    /// Display name, unique within the workspace.
    pub name: String,
    /// What the role is for.
    pub description: Option<String>,
    /// What it allows.
    pub authorities: BTreeSet<Authority>,
    /// The projects (ids) it is limited to; `None`: every project.
    pub project_ids: Option<Vec<String>>,
    /// The same projects by slug, sorted (projects deleted since are left out).
    pub project_slugs: Option<Vec<String>>,
    /// The built-in admin role of the workspace.
    pub is_admin_role: bool,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
}

/// A role to create; the caller has validated the name and resolved project slugs to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRole {
    /// Display name (its slug is derived from it).
    pub name: String,
    /// What the role is for.
    pub description: Option<String>,
    /// What it allows.
    pub authorities: BTreeSet<Authority>,
    /// The projects (ids of the same workspace) it is limited to; `None`: every project.
    pub project_ids: Option<Vec<String>>,
}

/// Changes to a role; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleChanges {
    /// A new name (the slug stays).
    pub name: Option<String>,
    /// A new description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// A new set of authorities (replaces the old one).
    pub authorities: Option<BTreeSet<Authority>>,
    /// New project limit (ids); `Some(None)` lifts it.
    pub project_ids: Option<Option<Vec<String>>>,
}

/// A member of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// When the user joined (UTC).
    pub joined_at: NaiveDateTime,
    /// The slugs of the roles the member holds, sorted.
    pub roles: Vec<String>,
}

/// A `workspace_roles` row as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = workspace_roles)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
struct RoleRow {
    id: String,
    workspace_id: String,
    slug: String,
    name: String,
    description: Option<String>,
    authorities: String,
    project_ids: Option<String>,
    is_admin_role: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl RoleRow {
    /// The role, with project ids turned into slugs through `slugs` (id → slug).
    fn into_role(self, slugs: &HashMap<String, String>) -> Role {
        let project_ids: Option<Vec<String>> = self
            .project_ids
            .as_deref()
            .map(|json| serde_json::from_str(json).unwrap_or_default());
        let project_slugs = project_ids.as_ref().map(|ids| {
            let mut found: Vec<String> =
                ids.iter().filter_map(|id| slugs.get(id).cloned()).collect();
            found.sort();
            found
        });
        Role {
            authorities: parse_authorities(&self.authorities),
            id: self.id,
            workspace_id: self.workspace_id,
            slug: self.slug,
            name: self.name,
            description: self.description,
            project_ids,
            project_slugs,
            is_admin_role: self.is_admin_role,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

fn ids_json(ids: Option<&Vec<String>>) -> Option<String> {
    ids.map(|ids| {
        let unique: BTreeSet<&String> = ids.iter().collect();
        serde_json::to_string(&unique).expect("strings serialize")
    })
}

fn names(set: &BTreeSet<Authority>) -> Vec<&'static str> {
    set.iter().map(|a| a.as_str()).collect()
}

fn bad_cursor() -> DbError {
    DbError::InvalidInput("the cursor is not valid".into())
}

fn page_after(page: &PageRequest) -> Result<Option<String>, DbError> {
    page.after
        .as_deref()
        .map(|cursor| decode_cursor(cursor).ok_or_else(bad_cursor))
        .transpose()
}

/// Id → slug of every project of a workspace, on `$conn`.
macro_rules! project_slugs {
    ($conn:expr, $workspace_id:expr) => {{
        let rows: Vec<(String, String)> = projects::table
            .filter(projects::workspace_id.eq($workspace_id))
            .select((projects::id, projects::slug))
            .load(&mut *$conn)
            .await?;
        rows.into_iter().collect::<HashMap<String, String>>()
    }};
}

/// Takes a write lock on the workspace's admin role row (a no-op update), so that concurrent
/// membership changes that could remove the last admin run one after the other on PostgreSQL
/// (SQLite's `BEGIN IMMEDIATE` serializes writers anyway). Evaluates to the admin role ids.
macro_rules! lock_admin_roles {
    ($conn:expr, $workspace_id:expr) => {{
        diesel::update(
            workspace_roles::table
                .filter(workspace_roles::workspace_id.eq($workspace_id))
                .filter(workspace_roles::is_admin_role.eq(true)),
        )
        .set(workspace_roles::updated_at.eq(workspace_roles::updated_at))
        .execute(&mut *$conn)
        .await?;
        workspace_roles::table
            .filter(workspace_roles::workspace_id.eq($workspace_id))
            .filter(workspace_roles::is_admin_role.eq(true))
            .select(workspace_roles::id)
            .load::<String>(&mut *$conn)
            .await?
    }};
}

/// The users holding one of `$admin_roles` in the workspace.
macro_rules! admin_holders {
    ($conn:expr, $workspace_id:expr, $admin_roles:expr) => {{
        let holders: Vec<String> = member_roles::table
            .filter(member_roles::workspace_id.eq($workspace_id))
            .filter(member_roles::role_id.eq_any($admin_roles))
            .select(member_roles::user_id)
            .load(&mut *$conn)
            .await?;
        holders.into_iter().collect::<BTreeSet<String>>()
    }};
}

/// The role slugs `$user_id` holds in the workspace, sorted.
macro_rules! role_slugs_of {
    ($conn:expr, $workspace_id:expr, $user_id:expr) => {{
        member_roles::table
            .inner_join(workspace_roles::table)
            .filter(member_roles::workspace_id.eq($workspace_id))
            .filter(member_roles::user_id.eq($user_id))
            .order(workspace_roles::slug.asc())
            .select(workspace_roles::slug)
            .load::<String>(&mut *$conn)
            .await?
    }};
}

fn last_admin(user: &str) -> DbError {
    DbError::Conflict(format!(
        "{user} is the last member holding the admin role; give it to someone else first"
    ))
}

impl Db {
    /// Creates a role (slug derived from the name, unique in the workspace); records
    /// `WORKSPACE_ROLE_CREATED`.
    ///
    /// # Errors
    ///
    /// [`DbError::Conflict`] when the workspace has a role of that name, or any [`DbError`].
    pub async fn create_role(
        &self,
        workspace: &Workspace,
        new: &NewRole,
        actor: &Actor,
    ) -> Result<Role, DbError> {
        let base = slugify(&new.name, "role");
        transaction!(self, |conn| {
            let existing: Vec<(String, String)> = workspace_roles::table
                .filter(workspace_roles::workspace_id.eq(&workspace.id))
                .select((workspace_roles::slug, workspace_roles::name))
                .load(conn)
                .await?;
            if existing.iter().any(|(_, name)| *name == new.name) {
                return Err(DbError::Conflict(format!(
                    "the workspace already has a role named `{}`",
                    new.name
                )));
            }
            let taken: Vec<String> = existing.into_iter().map(|(slug, _)| slug).collect();
            let at = now();
            let row = RoleRow {
                id: new_id(),
                workspace_id: workspace.id.clone(),
                slug: first_free_slug(&base, &taken),
                name: new.name.clone(),
                description: new.description.clone(),
                authorities: authorities_json(&new.authorities),
                project_ids: ids_json(new.project_ids.as_ref()),
                is_admin_role: false,
                created_at: at,
                updated_at: at,
            };
            diesel::insert_into(workspace_roles::table)
                .values(&row)
                .execute(conn)
                .await?;
            let slugs = project_slugs!(conn, &workspace.id);
            let role = row.into_role(&slugs);
            let event = Event::new(
                &workspace.id,
                EventType::WorkspaceRoleCreated,
                EventSource::WorkspaceRole,
                actor,
                format!("Role {} created in {}", role.name, workspace.name),
            )
            .payload(json!({
                "role": role.slug,
                "name": role.name,
                "authorities": names(&role.authorities),
                "projects": role.project_slugs,
            }));
            record_event!(conn, &event);
            Ok(role)
        })
    }

    /// The roles of a workspace by slug, one page at a time.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] for a cursor this server did not make, or any [`DbError`].
    pub async fn list_roles(
        &self,
        workspace_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Role>, DbError> {
        let after = page_after(page)?;
        let limit = page.limit();
        let (rows, slugs) = with_conn!(self, |conn| {
            let mut query = workspace_roles::table
                .filter(workspace_roles::workspace_id.eq(workspace_id))
                .into_boxed();
            if let Some(after) = &after {
                query = query.filter(workspace_roles::slug.gt(after));
            }
            let rows: Vec<RoleRow> = query
                .order(workspace_roles::slug.asc())
                .limit(limit + 1)
                .select(RoleRow::as_select())
                .load(conn)
                .await?;
            (rows, project_slugs!(conn, workspace_id))
        });
        let roles = rows.into_iter().map(|row| row.into_role(&slugs)).collect();
        Ok(Page::from_rows(roles, limit, |role: &Role| {
            role.slug.clone()
        }))
    }

    /// The role with this slug in a workspace.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`], or any other [`DbError`].
    pub async fn role_by_slug(&self, workspace_id: &str, slug: &str) -> Result<Role, DbError> {
        let (row, slugs) = with_conn!(self, |conn| {
            let row: RoleRow = workspace_roles::table
                .filter(workspace_roles::workspace_id.eq(workspace_id))
                .filter(workspace_roles::slug.eq(slug))
                .select(RoleRow::as_select())
                .first(conn)
                .await?;
            (row, project_slugs!(conn, workspace_id))
        });
        Ok(row.into_role(&slugs))
    }

    /// The roles with these slugs in a workspace, by slug (unknown slugs are left out).
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn roles_by_slugs(
        &self,
        workspace_id: &str,
        slugs: &[String],
    ) -> Result<Vec<Role>, DbError> {
        let (rows, projects) = with_conn!(self, |conn| {
            let rows: Vec<RoleRow> = workspace_roles::table
                .filter(workspace_roles::workspace_id.eq(workspace_id))
                .filter(workspace_roles::slug.eq_any(slugs))
                .order(workspace_roles::slug.asc())
                .select(RoleRow::as_select())
                .load(conn)
                .await?;
            (rows, project_slugs!(conn, workspace_id))
        });
        Ok(rows
            .into_iter()
            .map(|row| row.into_role(&projects))
            .collect())
    }

    /// Changes a role (its slug stays); records `WORKSPACE_ROLE_UPDATED`.
    ///
    /// # Errors
    ///
    /// [`DbError::Conflict`] for a name another role of the workspace has, or when the change
    /// would take `WORKSPACE_ADMIN` from the admin role or limit it to projects; or any
    /// [`DbError`].
    pub async fn update_role(
        &self,
        workspace: &Workspace,
        role: &Role,
        changes: &RoleChanges,
        actor: &Actor,
    ) -> Result<Role, DbError> {
        if role.is_admin_role {
            if changes
                .authorities
                .as_ref()
                .is_some_and(|set| !set.contains(&Authority::WorkspaceAdmin))
            {
                return Err(DbError::Conflict(
                    "the admin role always holds WORKSPACE_ADMIN".into(),
                ));
            }
            if changes.project_ids.as_ref().is_some_and(Option::is_some) {
                return Err(DbError::Conflict(
                    "the admin role cannot be limited to projects".into(),
                ));
            }
        }
        transaction!(self, |conn| {
            if let Some(name) = &changes.name {
                let clash: i64 = workspace_roles::table
                    .filter(workspace_roles::workspace_id.eq(&workspace.id))
                    .filter(workspace_roles::name.eq(name))
                    .filter(workspace_roles::id.ne(&role.id))
                    .count()
                    .get_result(conn)
                    .await?;
                if clash > 0 {
                    return Err(DbError::Conflict(format!(
                        "the workspace already has a role named `{name}`"
                    )));
                }
            }
            let current: RoleRow = workspace_roles::table
                .find(&role.id)
                .select(RoleRow::as_select())
                .first(conn)
                .await?;
            let mut row = current.clone();
            if let Some(name) = &changes.name {
                row.name.clone_from(name);
            }
            if let Some(description) = &changes.description {
                row.description.clone_from(description);
            }
            if let Some(authorities) = &changes.authorities {
                row.authorities = authorities_json(authorities);
            }
            if let Some(project_ids) = &changes.project_ids {
                row.project_ids = ids_json(project_ids.as_ref());
            }
            row.updated_at = now();
            diesel::update(workspace_roles::table.find(&role.id))
                .set((
                    workspace_roles::name.eq(&row.name),
                    workspace_roles::description.eq(&row.description),
                    workspace_roles::authorities.eq(&row.authorities),
                    workspace_roles::project_ids.eq(&row.project_ids),
                    workspace_roles::updated_at.eq(row.updated_at),
                ))
                .execute(conn)
                .await?;
            let slugs = project_slugs!(conn, &workspace.id);
            let before = current.into_role(&slugs);
            let updated = row.into_role(&slugs);
            let event = Event::new(
                &workspace.id,
                EventType::WorkspaceRoleUpdated,
                EventSource::WorkspaceRole,
                actor,
                format!("Role {} updated in {}", updated.name, workspace.name),
            )
            .payload(json!({
                "role": updated.slug,
                "name": updated.name,
                "previousName": before.name,
                "authorities": names(&updated.authorities),
                "previousAuthorities": names(&before.authorities),
                "projects": updated.project_slugs,
                "previousProjects": before.project_slugs,
            }));
            record_event!(conn, &event);
            Ok(updated)
        })
    }

    /// Deletes a role; its holders lose it. Records `WORKSPACE_ROLE_DELETED`.
    ///
    /// # Errors
    ///
    /// [`DbError::Conflict`] for the admin role, [`DbError::NotFound`] when it is gone already,
    /// or any [`DbError`].
    pub async fn delete_role(
        &self,
        workspace: &Workspace,
        role: &Role,
        actor: &Actor,
    ) -> Result<(), DbError> {
        if role.is_admin_role {
            return Err(DbError::Conflict("the admin role cannot be deleted".into()));
        }
        transaction!(self, |conn| {
            let holders: i64 = member_roles::table
                .filter(member_roles::role_id.eq(&role.id))
                .count()
                .get_result(conn)
                .await?;
            let deleted = diesel::delete(workspace_roles::table.find(&role.id))
                .execute(conn)
                .await?;
            if deleted == 0 {
                return Err(DbError::NotFound);
            }
            let event = Event::new(
                &workspace.id,
                EventType::WorkspaceRoleDeleted,
                EventSource::WorkspaceRole,
                actor,
                format!("Role {} deleted from {}", role.name, workspace.name),
            )
            .severity(Severity::Warn)
            .payload(json!({"role": role.slug, "name": role.name, "holders": holders}));
            record_event!(conn, &event);
            Ok(())
        })
    }

    /// Adds `user` to a workspace holding `roles` (roles of that workspace). keywire adds
    /// members directly (no invitation to accept); the event is `INVITED_TO_WORKSPACE` with
    /// `"direct": true` in its payload.
    ///
    /// # Errors
    ///
    /// [`DbError::Conflict`] when the user is a member already, [`DbError::InvalidInput`] for a
    /// role of another workspace, or any [`DbError`].
    pub async fn add_member(
        &self,
        workspace: &Workspace,
        user: &User,
        roles: &[Role],
        actor: &Actor,
    ) -> Result<Member, DbError> {
        if roles.iter().any(|role| role.workspace_id != workspace.id) {
            return Err(DbError::InvalidInput(
                "a role belongs to another workspace".into(),
            ));
        }
        let role_ids: BTreeSet<&String> = roles.iter().map(|role| &role.id).collect();
        transaction!(self, |conn| {
            let already: i64 = workspace_members::table
                .filter(workspace_members::workspace_id.eq(&workspace.id))
                .filter(workspace_members::user_id.eq(&user.id))
                .count()
                .get_result(conn)
                .await?;
            if already > 0 {
                return Err(DbError::Conflict(format!(
                    "{} is a member of this workspace already",
                    user.name
                )));
            }
            let at = now();
            diesel::insert_into(workspace_members::table)
                .values((
                    workspace_members::workspace_id.eq(&workspace.id),
                    workspace_members::user_id.eq(&user.id),
                    workspace_members::created_at.eq(at),
                ))
                .execute(conn)
                .await?;
            for role_id in &role_ids {
                diesel::insert_into(member_roles::table)
                    .values((
                        member_roles::workspace_id.eq(&workspace.id),
                        member_roles::user_id.eq(&user.id),
                        member_roles::role_id.eq(*role_id),
                    ))
                    .execute(conn)
                    .await?;
            }
            let slugs = role_slugs_of!(conn, &workspace.id, &user.id);
            let event = Event::new(
                &workspace.id,
                EventType::InvitedToWorkspace,
                EventSource::WorkspaceMembership,
                actor,
                format!("{} added to {}", user.name, workspace.name),
            )
            .payload(json!({"user": user.name, "roles": slugs, "direct": true}));
            record_event!(conn, &event);
            Ok(Member {
                user_id: user.id.clone(),
                user_name: user.name.clone(),
                joined_at: at,
                roles: slugs,
            })
        })
    }

    /// The members of a workspace by user name, one page at a time.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] for a cursor this server did not make, or any [`DbError`].
    pub async fn list_members(
        &self,
        workspace_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Member>, DbError> {
        let after = page_after(page)?;
        let limit = page.limit();
        let (rows, held) = with_conn!(self, |conn| {
            let mut query = workspace_members::table
                .inner_join(users::table)
                .filter(workspace_members::workspace_id.eq(workspace_id))
                .into_boxed();
            if let Some(after) = &after {
                query = query.filter(users::name.gt(after));
            }
            let rows: Vec<(String, String, NaiveDateTime)> = query
                .order(users::name.asc())
                .limit(limit + 1)
                .select((users::id, users::name, workspace_members::created_at))
                .load(conn)
                .await?;
            let ids: Vec<&String> = rows.iter().map(|(id, _, _)| id).collect();
            let held: Vec<(String, String)> = member_roles::table
                .inner_join(workspace_roles::table)
                .filter(member_roles::workspace_id.eq(workspace_id))
                .filter(member_roles::user_id.eq_any(ids))
                .order(workspace_roles::slug.asc())
                .select((member_roles::user_id, workspace_roles::slug))
                .load(conn)
                .await?;
            (rows, held)
        });
        let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
        for (user_id, slug) in held {
            by_user.entry(user_id).or_default().push(slug);
        }
        let members = rows
            .into_iter()
            .map(|(user_id, user_name, joined_at)| Member {
                roles: by_user.remove(&user_id).unwrap_or_default(),
                user_id,
                user_name,
                joined_at,
            })
            .collect();
        Ok(Page::from_rows(members, limit, |member: &Member| {
            member.user_name.clone()
        }))
    }

    /// One member of a workspace.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] when the user is not a member, or any other [`DbError`].
    pub async fn member(&self, workspace_id: &str, user_id: &str) -> Result<Member, DbError> {
        with_conn!(self, |conn| {
            let (user_name, joined_at): (String, NaiveDateTime) = workspace_members::table
                .inner_join(users::table)
                .filter(workspace_members::workspace_id.eq(workspace_id))
                .filter(workspace_members::user_id.eq(user_id))
                .select((users::name, workspace_members::created_at))
                .first(conn)
                .await?;
            let roles = role_slugs_of!(conn, workspace_id, user_id);
            Ok(Member {
                user_id: user_id.to_owned(),
                user_name,
                joined_at,
                roles,
            })
        })
    }

    /// Replaces the roles a member holds; records `WORKSPACE_MEMBERSHIP_UPDATED`.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] when the user is not a member, [`DbError::Conflict`] when this
    /// would leave the workspace without a member holding the admin role,
    /// [`DbError::InvalidInput`] for a role of another workspace, or any [`DbError`].
    pub async fn set_member_roles(
        &self,
        workspace: &Workspace,
        user: &User,
        roles: &[Role],
        actor: &Actor,
    ) -> Result<Member, DbError> {
        if roles.iter().any(|role| role.workspace_id != workspace.id) {
            return Err(DbError::InvalidInput(
                "a role belongs to another workspace".into(),
            ));
        }
        let role_ids: BTreeSet<&String> = roles.iter().map(|role| &role.id).collect();
        transaction!(self, |conn| {
            let admin_roles = lock_admin_roles!(conn, &workspace.id);
            let joined_at: NaiveDateTime = workspace_members::table
                .filter(workspace_members::workspace_id.eq(&workspace.id))
                .filter(workspace_members::user_id.eq(&user.id))
                .select(workspace_members::created_at)
                .first(conn)
                .await?;
            let holders = admin_holders!(conn, &workspace.id, &admin_roles);
            let keeps_admin = admin_roles.iter().any(|id| role_ids.contains(id));
            if holders.contains(&user.id) && holders.len() == 1 && !keeps_admin {
                return Err(last_admin(&user.name));
            }
            let before = role_slugs_of!(conn, &workspace.id, &user.id);
            diesel::delete(
                member_roles::table
                    .filter(member_roles::workspace_id.eq(&workspace.id))
                    .filter(member_roles::user_id.eq(&user.id)),
            )
            .execute(conn)
            .await?;
            for role_id in &role_ids {
                diesel::insert_into(member_roles::table)
                    .values((
                        member_roles::workspace_id.eq(&workspace.id),
                        member_roles::user_id.eq(&user.id),
                        member_roles::role_id.eq(*role_id),
                    ))
                    .execute(conn)
                    .await?;
            }
            let after = role_slugs_of!(conn, &workspace.id, &user.id);
            let event = Event::new(
                &workspace.id,
                EventType::WorkspaceMembershipUpdated,
                EventSource::WorkspaceMembership,
                actor,
                format!("Roles of {} in {} changed", user.name, workspace.name),
            )
            .payload(json!({"user": user.name, "roles": after, "previousRoles": before}));
            record_event!(conn, &event);
            Ok(Member {
                user_id: user.id.clone(),
                user_name: user.name.clone(),
                joined_at,
                roles: after,
            })
        })
    }

    /// Removes a member from a workspace; records `LEFT_WORKSPACE` when the actor removes
    /// themselves, `REMOVED_FROM_WORKSPACE` otherwise.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] when the user is not a member, [`DbError::Conflict`] when the user
    /// is the last member holding the admin role, or any [`DbError`].
    pub async fn remove_member(
        &self,
        workspace: &Workspace,
        user: &User,
        actor: &Actor,
    ) -> Result<(), DbError> {
        transaction!(self, |conn| {
            let admin_roles = lock_admin_roles!(conn, &workspace.id);
            let holders = admin_holders!(conn, &workspace.id, &admin_roles);
            if holders.contains(&user.id) && holders.len() == 1 {
                return Err(last_admin(&user.name));
            }
            let roles = role_slugs_of!(conn, &workspace.id, &user.id);
            let deleted = diesel::delete(
                workspace_members::table
                    .filter(workspace_members::workspace_id.eq(&workspace.id))
                    .filter(workspace_members::user_id.eq(&user.id)),
            )
            .execute(conn)
            .await?;
            if deleted == 0 {
                return Err(DbError::NotFound);
            }
            let left = actor.id == user.id;
            let (event_type, title) = if left {
                (
                    EventType::LeftWorkspace,
                    format!("{} left {}", user.name, workspace.name),
                )
            } else {
                (
                    EventType::RemovedFromWorkspace,
                    format!("{} removed from {}", user.name, workspace.name),
                )
            };
            let event = Event::new(
                &workspace.id,
                event_type,
                EventSource::WorkspaceMembership,
                actor,
                title,
            )
            .severity(Severity::Warn)
            .payload(json!({"user": user.name, "roles": roles}));
            record_event!(conn, &event);
            Ok(())
        })
    }
}
