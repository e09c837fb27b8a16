//! Workspaces, projects and environments.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use keywire_core::{Actor, EventSource, EventType, Severity};
use serde_json::json;

use crate::authority::{Authority, authorities_json};
use crate::db::{transaction, with_conn};
use crate::events::{Event, record_event};
use crate::schema::{
    environments, integration_environments, integrations, member_roles, projects,
    workspace_members, workspace_roles, workspaces,
};
use crate::tokens::{new_id, now};
use crate::util::{Page, PageRequest, decode_cursor, first_free_slug, slugify};
use crate::{Db, DbError};

/// A workspace.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = workspaces)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Workspace {
    /// UUID.
    pub id: String,
    /// Stable, unique, URL-safe.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Who created it.
    pub created_by: Option<String>,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = projects)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Project {
    /// UUID.
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// Stable, globally unique, URL-safe.
    pub slug: String,
    /// Unique in the workspace.
    pub name: String,
    /// What it is.
    pub description: Option<String>,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
}

/// An environment of a project.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = environments)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Environment {
    /// UUID.
    pub id: String,
    /// The project.
    pub project_id: String,
    /// Stable, unique in the project.
    pub slug: String,
    /// Unique in the project.
    pub name: String,
    /// What it is.
    pub description: Option<String>,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
}

/// A new environment: name and description, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnvironment {
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
}

/// Slugs already taken that start with `base`, for [`first_free_slug`].
macro_rules! taken_slugs {
    ($conn:expr, $table:ident, $base:expr) => {{
        let pattern = format!("{}%", $base);
        $table::table
            .filter($table::slug.like(pattern))
            .select($table::slug)
            .load::<String>(&mut *$conn)
            .await?
    }};
}

fn page_after(page: &PageRequest) -> Result<Option<String>, DbError> {
    page.after
        .as_deref()
        .map(|c| {
            decode_cursor(c).ok_or_else(|| DbError::InvalidInput("the cursor is not valid".into()))
        })
        .transpose()
}

impl Db {
    /// Creates a workspace with its built-in `admin` role (holding `WORKSPACE_ADMIN`), makes the
    /// creator a member holding it, and records `WORKSPACE_CREATED`.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn create_workspace(&self, name: &str, actor: &Actor) -> Result<Workspace, DbError> {
        let base = slugify(name, "workspace");
        transaction!(self, |conn| {
            let taken = taken_slugs!(conn, workspaces, base);
            let at = now();
            let workspace = Workspace {
                id: new_id(),
                slug: first_free_slug(&base, &taken),
                name: name.to_owned(),
                created_by: Some(actor.id.clone()),
                created_at: at,
                updated_at: at,
            };
            diesel::insert_into(workspaces::table)
                .values(&workspace)
                .execute(conn)
                .await?;
            let role_id = new_id();
            diesel::insert_into(workspace_roles::table)
                .values((
                    workspace_roles::id.eq(&role_id),
                    workspace_roles::workspace_id.eq(&workspace.id),
                    workspace_roles::slug.eq("admin"),
                    workspace_roles::name.eq("Admin"),
                    workspace_roles::description.eq("Everything in this workspace."),
                    workspace_roles::authorities.eq(authorities_json(
                        &[Authority::WorkspaceAdmin].into_iter().collect(),
                    )),
                    workspace_roles::project_ids.eq(None::<String>),
                    workspace_roles::is_admin_role.eq(true),
                    workspace_roles::created_at.eq(at),
                    workspace_roles::updated_at.eq(at),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(workspace_members::table)
                .values((
                    workspace_members::workspace_id.eq(&workspace.id),
                    workspace_members::user_id.eq(&actor.id),
                    workspace_members::created_at.eq(at),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(member_roles::table)
                .values((
                    member_roles::workspace_id.eq(&workspace.id),
                    member_roles::user_id.eq(&actor.id),
                    member_roles::role_id.eq(&role_id),
                ))
                .execute(conn)
                .await?;
            let event = Event::new(
                &workspace.id,
                EventType::WorkspaceCreated,
                EventSource::Workspace,
                actor,
                format!("Workspace {} created", workspace.name),
            )
            .payload(json!({"workspace": workspace.slug, "name": workspace.name}));
            record_event!(conn, &event);
            Ok(workspace)
        })
    }

    /// The workspace with this slug.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`], or any other [`DbError`].
    pub async fn workspace_by_slug(&self, slug: &str) -> Result<Workspace, DbError> {
        with_conn!(self, |conn| {
            Ok(workspaces::table
                .filter(workspaces::slug.eq(slug))
                .select(Workspace::as_select())
                .first(conn)
                .await?)
        })
    }

    /// The workspace with this id.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`], or any other [`DbError`].
    pub async fn workspace_by_id(&self, id: &str) -> Result<Workspace, DbError> {
        with_conn!(self, |conn| {
            Ok(workspaces::table
                .find(id)
                .select(Workspace::as_select())
                .first(conn)
                .await?)
        })
    }

    /// Workspaces `user_id` belongs to (every workspace for a server administrator), by slug.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] for a foreign cursor, or any [`DbError`].
    pub async fn list_workspaces(
        &self,
        user_id: &str,
        server_admin: bool,
        page: &PageRequest,
    ) -> Result<Page<Workspace>, DbError> {
        let after = page_after(page)?;
        let limit = page.limit();
        let rows: Vec<Workspace> = with_conn!(self, |conn| {
            let mut query = workspaces::table.into_boxed();
            if !server_admin {
                let mine = workspace_members::table
                    .filter(workspace_members::user_id.eq(user_id))
                    .select(workspace_members::workspace_id);
                query = query.filter(workspaces::id.eq_any(mine));
            }
            if let Some(after) = &after {
                query = query.filter(workspaces::slug.gt(after));
            }
            query
                .order(workspaces::slug.asc())
                .limit(limit + 1)
                .select(Workspace::as_select())
                .load(conn)
                .await?
        });
        Ok(Page::from_rows(rows, limit, |w| w.slug.clone()))
    }

    /// Renames a workspace (its slug stays) and records `WORKSPACE_UPDATED`.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`], or any other [`DbError`].
    pub async fn rename_workspace(
        &self,
        workspace: &Workspace,
        name: &str,
        actor: &Actor,
    ) -> Result<Workspace, DbError> {
        transaction!(self, |conn| {
            let at = now();
            diesel::update(workspaces::table.find(&workspace.id))
                .set((workspaces::name.eq(name), workspaces::updated_at.eq(at)))
                .execute(conn)
                .await?;
            let event = Event::new(
                &workspace.id,
                EventType::WorkspaceUpdated,
                EventSource::Workspace,
                actor,
                format!("Workspace {} renamed to {name}", workspace.name),
            )
            .payload(
                json!({"workspace": workspace.slug, "name": name, "previousName": workspace.name}),
            );
            record_event!(conn, &event);
            Ok(Workspace {
                name: name.to_owned(),
                updated_at: at,
                ..workspace.clone()
            })
        })
    }

    /// Deletes a workspace and everything in it (projects, environments, values, roles,
    /// members, events).
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn delete_workspace(&self, workspace: &Workspace) -> Result<(), DbError> {
        with_conn!(self, |conn| {
            diesel::delete(workspaces::table.find(&workspace.id))
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Creates a project, with environments if given, and records `PROJECT_CREATED` and one
    /// `ENVIRONMENT_ADDED` per environment.
    ///
    /// # Errors
    ///
    /// [`DbError::Conflict`] when the workspace has a project of that name, or any [`DbError`].
    pub async fn create_project(
        &self,
        workspace: &Workspace,
        name: &str,
        description: Option<&str>,
        new_environments: &[NewEnvironment],
        actor: &Actor,
    ) -> Result<(Project, Vec<Environment>), DbError> {
        let base = slugify(name, "project");
        transaction!(self, |conn| {
            let same_name: i64 = projects::table
                .filter(projects::workspace_id.eq(&workspace.id))
                .filter(projects::name.eq(name))
                .count()
                .get_result(conn)
                .await?;
            if same_name > 0 {
                return Err(DbError::Conflict(format!(
                    "the workspace already has a project named `{name}`"
                )));
            }
            let taken = taken_slugs!(conn, projects, base);
            let at = now();
            let project = Project {
                id: new_id(),
                workspace_id: workspace.id.clone(),
                slug: first_free_slug(&base, &taken),
                name: name.to_owned(),
                description: description.map(str::to_owned),
                created_at: at,
                updated_at: at,
            };
            diesel::insert_into(projects::table)
                .values(&project)
                .execute(conn)
                .await?;
            let event = Event::new(
                &workspace.id,
                EventType::ProjectCreated,
                EventSource::Project,
                actor,
                format!("Project {name} created"),
            )
            .project(&project.id)
            .payload(json!({"project": project.slug, "name": name}));
            record_event!(conn, &event);
            let mut created: Vec<Environment> = Vec::new();
            for new in new_environments {
                let taken: Vec<String> = created.iter().map(|e| e.slug.clone()).collect();
                if created.iter().any(|e| e.name == new.name) {
                    return Err(DbError::Conflict(format!(
                        "the environment name `{}` is given twice",
                        new.name
                    )));
                }
                let environment = Environment {
                    id: new_id(),
                    project_id: project.id.clone(),
                    slug: first_free_slug(&slugify(&new.name, "env"), &taken),
                    name: new.name.clone(),
                    description: new.description.clone(),
                    created_at: at,
                    updated_at: at,
                };
                diesel::insert_into(environments::table)
                    .values(&environment)
                    .execute(conn)
                    .await?;
                let event = Event::new(&workspace.id, EventType::EnvironmentAdded, EventSource::Environment, actor, format!("Environment {} added to {name}", environment.name))
                    .project(&project.id)
                    .environments(&[&environment.id])
                    .payload(json!({"project": project.slug, "environment": environment.slug, "name": environment.name}));
                record_event!(conn, &event);
                created.push(environment);
            }
            Ok((project, created))
        })
    }

    /// The project with this slug.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`], or any other [`DbError`].
    pub async fn project_by_slug(&self, slug: &str) -> Result<Project, DbError> {
        with_conn!(self, |conn| {
            Ok(projects::table
                .filter(projects::slug.eq(slug))
                .select(Project::as_select())
                .first(conn)
                .await?)
        })
    }

    /// Projects with these slugs in a workspace (unknown slugs are left out).
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn projects_by_slugs(
        &self,
        workspace_id: &str,
        slugs: &[String],
    ) -> Result<Vec<Project>, DbError> {
        with_conn!(self, |conn| {
            Ok(projects::table
                .filter(projects::workspace_id.eq(workspace_id))
                .filter(projects::slug.eq_any(slugs))
                .select(Project::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Projects of a workspace by slug; `visible` (project ids) narrows the list when given.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] for a foreign cursor, or any [`DbError`].
    pub async fn list_projects(
        &self,
        workspace_id: &str,
        visible: Option<&[String]>,
        page: &PageRequest,
    ) -> Result<Page<Project>, DbError> {
        let after = page_after(page)?;
        let limit = page.limit();
        let rows: Vec<Project> = with_conn!(self, |conn| {
            let mut query = projects::table
                .filter(projects::workspace_id.eq(workspace_id))
                .into_boxed();
            if let Some(ids) = visible {
                query = query.filter(projects::id.eq_any(ids));
            }
            if let Some(after) = &after {
                query = query.filter(projects::slug.gt(after));
            }
            query
                .order(projects::slug.asc())
                .limit(limit + 1)
                .select(Project::as_select())
                .load(conn)
                .await?
        });
        Ok(Page::from_rows(rows, limit, |p| p.slug.clone()))
    }

    /// Every project id of a workspace.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn project_ids(&self, workspace_id: &str) -> Result<Vec<String>, DbError> {
        with_conn!(self, |conn| {
            Ok(projects::table
                .filter(projects::workspace_id.eq(workspace_id))
                .select(projects::id)
                .load(conn)
                .await?)
        })
    }

    /// Changes a project's name and/or description (its slug stays); records `PROJECT_UPDATED`.
    ///
    /// # Errors
    ///
    /// [`DbError::Conflict`] for a name another project of the workspace has, or any [`DbError`].
    pub async fn update_project(
        &self,
        project: &Project,
        name: Option<&str>,
        description: Option<Option<&str>>,
        actor: &Actor,
    ) -> Result<Project, DbError> {
        transaction!(self, |conn| {
            let mut updated = project.clone();
            if let Some(name) = name {
                let clash: i64 = projects::table
                    .filter(projects::workspace_id.eq(&project.workspace_id))
                    .filter(projects::name.eq(name))
                    .filter(projects::id.ne(&project.id))
                    .count()
                    .get_result(conn)
                    .await?;
                if clash > 0 {
                    return Err(DbError::Conflict(format!(
                        "the workspace already has a project named `{name}`"
                    )));
                }
                name.clone_into(&mut updated.name);
            }
            if let Some(description) = description {
                updated.description = description.map(str::to_owned);
            }
            updated.updated_at = now();
            diesel::update(projects::table.find(&project.id))
                .set((
                    projects::name.eq(&updated.name),
                    projects::description.eq(&updated.description),
                    projects::updated_at.eq(updated.updated_at),
                ))
                .execute(conn)
                .await?;
            let event = Event::new(&project.workspace_id, EventType::ProjectUpdated, EventSource::Project, actor, format!("Project {} updated", updated.name))
                .project(&project.id)
                .payload(json!({"project": project.slug, "name": updated.name, "previousName": project.name}));
            record_event!(conn, &event);
            Ok(updated)
        })
    }

    /// Deletes a project with its environments and values; records `PROJECT_DELETED`.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn delete_project(&self, project: &Project, actor: &Actor) -> Result<(), DbError> {
        transaction!(self, |conn| {
            let env_ids: Vec<String> = environments::table
                .filter(environments::project_id.eq(&project.id))
                .select(environments::id)
                .load(conn)
                .await?;
            let event = Event::new(
                &project.workspace_id,
                EventType::ProjectDeleted,
                EventSource::Project,
                actor,
                format!("Project {} deleted", project.name),
            )
            .project(&project.id)
            .environments(&env_ids)
            .severity(Severity::Warn)
            .payload(json!({"project": project.slug, "name": project.name}));
            // The event first: delivery may still need the project's rows while fanning out.
            record_event!(conn, &event);
            // The project's integrations go with it (cascade): say so, one event each.
            let doomed: Vec<(String, String)> = integrations::table
                .filter(integrations::project_id.eq(&project.id))
                .select((integrations::slug, integrations::name))
                .load(conn)
                .await?;
            for (slug, name) in doomed {
                let event = Event::new(
                    &project.workspace_id,
                    EventType::IntegrationDeleted,
                    EventSource::Integration,
                    actor,
                    format!("Integration {name} deleted with project {}", project.name),
                )
                .severity(Severity::Warn)
                .payload(json!({"integration": slug, "name": name, "reason": "project deleted"}));
                record_event!(conn, &event);
            }
            diesel::delete(projects::table.find(&project.id))
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// Adds an environment to a project; records `ENVIRONMENT_ADDED`.
    ///
    /// # Errors
    ///
    /// [`DbError::Conflict`] when the project has an environment of that name, or any [`DbError`].
    pub async fn create_environment(
        &self,
        project: &Project,
        new: &NewEnvironment,
        actor: &Actor,
    ) -> Result<Environment, DbError> {
        let base = slugify(&new.name, "env");
        transaction!(self, |conn| {
            let existing: Vec<(String, String)> = environments::table
                .filter(environments::project_id.eq(&project.id))
                .select((environments::slug, environments::name))
                .load(conn)
                .await?;
            if existing.iter().any(|(_, name)| *name == new.name) {
                return Err(DbError::Conflict(format!(
                    "the project already has an environment named `{}`",
                    new.name
                )));
            }
            let taken: Vec<String> = existing.into_iter().map(|(slug, _)| slug).collect();
            let at = now();
            let environment = Environment {
                id: new_id(),
                project_id: project.id.clone(),
                slug: first_free_slug(&base, &taken),
                name: new.name.clone(),
                description: new.description.clone(),
                created_at: at,
                updated_at: at,
            };
            diesel::insert_into(environments::table)
                .values(&environment)
                .execute(conn)
                .await?;
            let event = Event::new(&project.workspace_id, EventType::EnvironmentAdded, EventSource::Environment, actor, format!("Environment {} added to {}", environment.name, project.name))
                .project(&project.id)
                .environments(&[&environment.id])
                .payload(json!({"project": project.slug, "environment": environment.slug, "name": environment.name}));
            record_event!(conn, &event);
            Ok(environment)
        })
    }

    /// Environments of a project, by slug (all of them: a project has few).
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn environments_of(&self, project_id: &str) -> Result<Vec<Environment>, DbError> {
        with_conn!(self, |conn| {
            Ok(environments::table
                .filter(environments::project_id.eq(project_id))
                .order(environments::slug.asc())
                .select(Environment::as_select())
                .load(conn)
                .await?)
        })
    }

    /// The environment with this slug in a project.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`], or any other [`DbError`].
    pub async fn environment_by_slug(
        &self,
        project_id: &str,
        slug: &str,
    ) -> Result<Environment, DbError> {
        with_conn!(self, |conn| {
            Ok(environments::table
                .filter(environments::project_id.eq(project_id))
                .filter(environments::slug.eq(slug))
                .select(Environment::as_select())
                .first(conn)
                .await?)
        })
    }

    /// Renames or re-describes an environment (its slug stays); records `ENVIRONMENT_UPDATED`.
    ///
    /// # Errors
    ///
    /// [`DbError::Conflict`] for a name another environment of the project has, or any [`DbError`].
    pub async fn update_environment(
        &self,
        project: &Project,
        environment: &Environment,
        name: Option<&str>,
        description: Option<Option<&str>>,
        actor: &Actor,
    ) -> Result<Environment, DbError> {
        transaction!(self, |conn| {
            let mut updated = environment.clone();
            if let Some(name) = name {
                let clash: i64 = environments::table
                    .filter(environments::project_id.eq(&project.id))
                    .filter(environments::name.eq(name))
                    .filter(environments::id.ne(&environment.id))
                    .count()
                    .get_result(conn)
                    .await?;
                if clash > 0 {
                    return Err(DbError::Conflict(format!(
                        "the project already has an environment named `{name}`"
                    )));
                }
                name.clone_into(&mut updated.name);
            }
            if let Some(description) = description {
                updated.description = description.map(str::to_owned);
            }
            updated.updated_at = now();
            diesel::update(environments::table.find(&environment.id))
                .set((
                    environments::name.eq(&updated.name),
                    environments::description.eq(&updated.description),
                    environments::updated_at.eq(updated.updated_at),
                ))
                .execute(conn)
                .await?;
            let event = Event::new(&project.workspace_id, EventType::EnvironmentUpdated, EventSource::Environment, actor, format!("Environment {} of {} updated", updated.name, project.name))
                .project(&project.id)
                .environments(&[&environment.id])
                .payload(json!({"project": project.slug, "environment": environment.slug, "name": updated.name, "previousName": environment.name}));
            record_event!(conn, &event);
            Ok(updated)
        })
    }

    /// Deletes an environment and its values; records `ENVIRONMENT_DELETED`.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn delete_environment(
        &self,
        project: &Project,
        environment: &Environment,
        actor: &Actor,
    ) -> Result<(), DbError> {
        transaction!(self, |conn| {
            let event = Event::new(&project.workspace_id, EventType::EnvironmentDeleted, EventSource::Environment, actor, format!("Environment {} of {} deleted", environment.name, project.name))
                .project(&project.id)
                .environments(&[&environment.id])
                .severity(Severity::Warn)
                .payload(json!({"project": project.slug, "environment": environment.slug, "name": environment.name}));
            record_event!(conn, &event);
            // An integration narrowed to this environment alone would, without it, hear the
            // whole project: disable it instead, and say so.
            let narrowed: Vec<String> = integration_environments::table
                .filter(integration_environments::environment_id.eq(&environment.id))
                .select(integration_environments::integration_id)
                .load(conn)
                .await?;
            for integration_id in narrowed {
                let others: i64 = integration_environments::table
                    .filter(integration_environments::integration_id.eq(&integration_id))
                    .filter(integration_environments::environment_id.ne(&environment.id))
                    .count()
                    .get_result(conn)
                    .await?;
                if others > 0 {
                    continue;
                }
                let (slug, name): (String, String) = integrations::table
                    .find(&integration_id)
                    .select((integrations::slug, integrations::name))
                    .first(conn)
                    .await?;
                diesel::update(integrations::table.find(&integration_id))
                    .set((
                        integrations::enabled.eq(false),
                        integrations::updated_at.eq(now()),
                    ))
                    .execute(conn)
                    .await?;
                let event = Event::new(&project.workspace_id, EventType::IntegrationUpdated, EventSource::Integration, actor, format!("Integration {name} disabled: its last environment was deleted"))
                    .project(&project.id)
                    .severity(Severity::Warn)
                    .payload(json!({"integration": slug, "name": name, "enabled": false, "reason": "last environment deleted", "environment": environment.slug}));
                record_event!(conn, &event);
            }
            diesel::delete(environments::table.find(&environment.id))
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}
