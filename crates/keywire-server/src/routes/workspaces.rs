//! Workspaces, projects and environments.
//!
//! Slugs are generated from names, unique and URL-safe, and never change: a rename keeps every
//! URL, integration and CLI script that uses the slug working.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use keywire_core::FieldErrors;
use keywire_db::util::{check_description, check_name};
use keywire_db::{Authority, Environment, NewEnvironment, Project, Workspace};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::access::{self, InProject};
use crate::auth::Caller;
use crate::body::{Body, nullable};
use crate::error::{ApiError, Problem};
use crate::routes::{List, PageQuery, iso};
use crate::state::AppState;

/// Registers the routes.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.service(create_workspace)
        .service(list_workspaces)
        .service(get_workspace)
        .service(update_workspace)
        .service(delete_workspace)
        .service(create_project)
        .service(list_projects)
        .service(get_project)
        .service(update_project)
        .service(delete_project)
        .service(create_environment)
        .service(list_environments)
        .service(get_environment)
        .service(update_environment)
        .service(delete_environment);
}

/// A workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceView {
    /// Stable, unique, URL-safe.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl From<Workspace> for WorkspaceView {
    fn from(w: Workspace) -> Self {
        WorkspaceView {
            slug: w.slug,
            name: w.name,
            created_at: iso(w.created_at),
            updated_at: iso(w.updated_at),
        }
    }
}

/// An environment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    /// Stable, unique in the project.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// What it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl From<Environment> for EnvironmentView {
    fn from(e: Environment) -> Self {
        EnvironmentView {
            slug: e.slug,
            name: e.name,
            description: e.description,
            created_at: iso(e.created_at),
            updated_at: iso(e.updated_at),
        }
    }
}

/// A project with its environments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    /// Stable, globally unique, URL-safe.
    pub slug: String,
    /// Display name, unique in the workspace.
    pub name: String,
    /// What it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The workspace's slug.
    pub workspace: String,
    /// Its environments (present on single-project answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<EnvironmentView>>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

fn project_view(
    project: Project,
    workspace: &str,
    environments: Option<Vec<Environment>>,
) -> ProjectView {
    ProjectView {
        slug: project.slug,
        name: project.name,
        description: project.description,
        workspace: workspace.to_owned(),
        environments: environments.map(|e| e.into_iter().map(EnvironmentView::from).collect()),
        created_at: iso(project.created_at),
        updated_at: iso(project.updated_at),
    }
}

/// Body of `POST /workspaces` and `PATCH /workspaces/{workspace}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkspaceBody {
    /// 1–64 characters: letters, digits, spaces and `- _ . ( ) ' & + : @ #`.
    pub name: String,
}

/// An environment to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvironmentBody {
    /// 1–64 characters; the slug comes from it.
    pub name: String,
    /// Up to 1000 characters.
    #[serde(default)]
    pub description: Option<String>,
}

/// Body of `POST /workspaces/{workspace}/projects`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProjectBody {
    /// 1–64 characters, unique in the workspace.
    pub name: String,
    /// Up to 1000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// Environments to create with the project (at most 50).
    #[serde(default)]
    pub environments: Vec<EnvironmentBody>,
}

/// Body of the PATCH of a project or an environment: absent fields stay, `null` clears the
/// description.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchBody {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// A new description, or `null` to clear it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

fn name_at(name: &str, pointer: &str) -> Result<String, ApiError> {
    check_name(name).map_err(|why| ApiError::fields(FieldErrors::one(pointer, why), ""))
}

fn description_at(description: Option<&str>, pointer: &str) -> Result<Option<String>, ApiError> {
    check_description(description)
        .map_err(|why| ApiError::fields(FieldErrors::one(pointer, why), ""))
}

/// Creates a workspace; the caller becomes its member holding the built-in `admin` role.
#[utoipa::path(tag = "workspaces", security(("bearer" = [])), request_body = WorkspaceBody, responses(
    (status = 201, description = "Created", body = WorkspaceView),
    (status = 400, description = "Invalid name", body = Problem),
    (status = 401, description = "No valid token", body = Problem),
))]
#[post("/workspaces")]
async fn create_workspace(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<WorkspaceBody>,
) -> Result<HttpResponse, ApiError> {
    let name = name_at(&body.0.name, "/name")?;
    let workspace = state.db.create_workspace(&name, &caller.actor()).await?;
    Ok(HttpResponse::Created().json(WorkspaceView::from(workspace)))
}

/// The workspaces the caller belongs to, by slug.
#[utoipa::path(tag = "workspaces", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "One page of workspaces", body = List<WorkspaceView>),
    (status = 400, description = "Bad cursor or limit", body = Problem),
    (status = 401, description = "No valid token", body = Problem),
))]
#[get("/workspaces")]
async fn list_workspaces(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<List<WorkspaceView>>, ApiError> {
    let page = state
        .db
        .list_workspaces(&caller.user.id, caller.user.is_admin, &query.page())
        .await?;
    Ok(web::Json(List::of(page, WorkspaceView::from)))
}

/// One workspace.
#[utoipa::path(tag = "workspaces", security(("bearer" = [])), params(("workspace" = String, Path, description = "Workspace slug")), responses(
    (status = 200, description = "The workspace", body = WorkspaceView),
    (status = 401, description = "No valid token", body = Problem),
    (status = 404, description = "No such workspace, or not visible to the caller", body = Problem),
))]
#[get("/workspaces/{workspace}")]
async fn get_workspace(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<WorkspaceView>, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    ws.require(Authority::ReadWorkspace)?;
    Ok(web::Json(ws.workspace.into()))
}

/// Renames a workspace; its slug stays.
#[utoipa::path(tag = "workspaces", security(("bearer" = [])), request_body = WorkspaceBody, params(("workspace" = String, Path, description = "Workspace slug")), responses(
    (status = 200, description = "Renamed", body = WorkspaceView),
    (status = 400, description = "Invalid name", body = Problem),
    (status = 403, description = "Needs UPDATE_WORKSPACE", body = Problem),
    (status = 404, description = "No such workspace", body = Problem),
))]
#[patch("/workspaces/{workspace}")]
async fn update_workspace(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<WorkspaceBody>,
) -> Result<web::Json<WorkspaceView>, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    ws.require(Authority::UpdateWorkspace)?;
    let name = name_at(&body.0.name, "/name")?;
    let renamed = state
        .db
        .rename_workspace(&ws.workspace, &name, &caller.actor())
        .await?;
    Ok(web::Json(renamed.into()))
}

/// Deletes a workspace with everything in it.
#[utoipa::path(tag = "workspaces", security(("bearer" = [])), params(("workspace" = String, Path, description = "Workspace slug")), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "Needs DELETE_WORKSPACE", body = Problem),
    (status = 404, description = "No such workspace", body = Problem),
))]
#[delete("/workspaces/{workspace}")]
async fn delete_workspace(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    ws.require(Authority::DeleteWorkspace)?;
    state.db.delete_workspace(&ws.workspace).await?;
    tracing::info!(workspace = %ws.workspace.slug, by = %caller.user.id, "workspace deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Creates a project, optionally with environments.
#[utoipa::path(tag = "projects", security(("bearer" = [])), request_body = ProjectBody, params(("workspace" = String, Path, description = "Workspace slug")), responses(
    (status = 201, description = "Created, with its environments", body = ProjectView),
    (status = 400, description = "Invalid field", body = Problem),
    (status = 403, description = "Needs CREATE_PROJECT", body = Problem),
    (status = 404, description = "No such workspace", body = Problem),
    (status = 409, description = "A project of that name exists", body = Problem),
))]
#[post("/workspaces/{workspace}/projects")]
async fn create_project(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<ProjectBody>,
) -> Result<HttpResponse, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    ws.require(Authority::CreateProject)?;
    let body = body.0;
    let name = name_at(&body.name, "/name")?;
    let description = description_at(body.description.as_deref(), "/description")?;
    if body.environments.len() > 50 {
        return Err(ApiError::fields(
            FieldErrors::one("/environments", "at most 50 environments"),
            "",
        ));
    }
    let mut environments = Vec::new();
    for (i, env) in body.environments.iter().enumerate() {
        environments.push(NewEnvironment {
            name: name_at(&env.name, &format!("/environments/{i}/name"))?,
            description: description_at(
                env.description.as_deref(),
                &format!("/environments/{i}/description"),
            )?,
        });
    }
    let (project, envs) = state
        .db
        .create_project(
            &ws.workspace,
            &name,
            description.as_deref(),
            &environments,
            &caller.actor(),
        )
        .await?;
    Ok(HttpResponse::Created().json(project_view(project, &ws.workspace.slug, Some(envs))))
}

/// The projects of a workspace the caller may read, by slug.
#[utoipa::path(tag = "projects", security(("bearer" = [])), params(("workspace" = String, Path, description = "Workspace slug"), PageQuery), responses(
    (status = 200, description = "One page of projects", body = List<ProjectView>),
    (status = 404, description = "No such workspace", body = Problem),
))]
#[get("/workspaces/{workspace}/projects")]
async fn list_projects(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<List<ProjectView>>, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    let visible = if ws.access.can(Authority::ReadProject, None) {
        None
    } else {
        let all = state.db.project_ids(&ws.workspace.id).await?;
        Some(
            all.into_iter()
                .filter(|id| ws.access.can(Authority::ReadProject, Some(id)))
                .collect::<Vec<_>>(),
        )
    };
    let page = state
        .db
        .list_projects(&ws.workspace.id, visible.as_deref(), &query.page())
        .await?;
    let slug = ws.workspace.slug;
    Ok(web::Json(List::of(page, |p| project_view(p, &slug, None))))
}

/// One project with its environments.
#[utoipa::path(tag = "projects", security(("bearer" = [])), params(("project" = String, Path, description = "Project slug")), responses(
    (status = 200, description = "The project", body = ProjectView),
    (status = 404, description = "No such project, or not visible to the caller", body = Problem),
))]
#[get("/projects/{project}")]
async fn get_project(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<ProjectView>, ApiError> {
    let p = access::project(&state, &caller, &path).await?;
    let envs = state.db.environments_of(&p.project.id).await?;
    Ok(web::Json(project_view(
        p.project,
        &p.workspace.slug,
        Some(envs),
    )))
}

/// Renames or re-describes a project; its slug stays.
#[utoipa::path(tag = "projects", security(("bearer" = [])), request_body = PatchBody, params(("project" = String, Path, description = "Project slug")), responses(
    (status = 200, description = "Updated", body = ProjectView),
    (status = 400, description = "Invalid field", body = Problem),
    (status = 403, description = "Needs UPDATE_PROJECT", body = Problem),
    (status = 404, description = "No such project", body = Problem),
    (status = 409, description = "Another project has that name", body = Problem),
))]
#[patch("/projects/{project}")]
async fn update_project(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<PatchBody>,
) -> Result<web::Json<ProjectView>, ApiError> {
    let p = access::project(&state, &caller, &path).await?;
    p.require(Authority::UpdateProject)?;
    let (name, description) = patch_fields(&body.0)?;
    let updated = state
        .db
        .update_project(
            &p.project,
            name.as_deref(),
            description.as_ref().map(Option::as_deref),
            &caller.actor(),
        )
        .await?;
    let envs = state.db.environments_of(&updated.id).await?;
    Ok(web::Json(project_view(
        updated,
        &p.workspace.slug,
        Some(envs),
    )))
}

fn patch_fields(body: &PatchBody) -> Result<(Option<String>, Option<Option<String>>), ApiError> {
    let name = body
        .name
        .as_deref()
        .map(|n| name_at(n, "/name"))
        .transpose()?;
    let description = match &body.description {
        None => None,
        Some(text) => Some(description_at(text.as_deref(), "/description")?),
    };
    if name.is_none() && description.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: send `name` and/or `description`",
        ));
    }
    Ok((name, description))
}

/// Deletes a project with its environments, secrets and variables.
#[utoipa::path(tag = "projects", security(("bearer" = [])), params(("project" = String, Path, description = "Project slug")), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "Needs DELETE_PROJECT", body = Problem),
    (status = 404, description = "No such project", body = Problem),
))]
#[delete("/projects/{project}")]
async fn delete_project(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = access::project(&state, &caller, &path).await?;
    p.require(Authority::DeleteProject)?;
    state.db.delete_project(&p.project, &caller.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Adds an environment to a project.
#[utoipa::path(tag = "environments", security(("bearer" = [])), request_body = EnvironmentBody, params(("project" = String, Path, description = "Project slug")), responses(
    (status = 201, description = "Created", body = EnvironmentView),
    (status = 400, description = "Invalid field", body = Problem),
    (status = 403, description = "Needs CREATE_ENVIRONMENT", body = Problem),
    (status = 404, description = "No such project", body = Problem),
    (status = 409, description = "An environment of that name exists", body = Problem),
))]
#[post("/projects/{project}/environments")]
async fn create_environment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<EnvironmentBody>,
) -> Result<HttpResponse, ApiError> {
    let p = access::project(&state, &caller, &path).await?;
    p.require(Authority::CreateEnvironment)?;
    let new = NewEnvironment {
        name: name_at(&body.0.name, "/name")?,
        description: description_at(body.0.description.as_deref(), "/description")?,
    };
    let env = state
        .db
        .create_environment(&p.project, &new, &caller.actor())
        .await?;
    Ok(HttpResponse::Created().json(EnvironmentView::from(env)))
}

/// The environments of a project, by slug (one page: projects have few environments).
#[utoipa::path(tag = "environments", security(("bearer" = [])), params(("project" = String, Path, description = "Project slug")), responses(
    (status = 200, description = "All environments", body = List<EnvironmentView>),
    (status = 404, description = "No such project", body = Problem),
))]
#[get("/projects/{project}/environments")]
async fn list_environments(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<List<EnvironmentView>>, ApiError> {
    let p = access::project(&state, &caller, &path).await?;
    let envs = state.db.environments_of(&p.project.id).await?;
    Ok(web::Json(List {
        items: envs.into_iter().map(EnvironmentView::from).collect(),
        next_cursor: None,
    }))
}

async fn environment_in(
    state: &AppState,
    p: &InProject,
    slug: &str,
) -> Result<Environment, ApiError> {
    match state.db.environment_by_slug(&p.project.id, slug).await {
        Ok(env) => Ok(env),
        Err(keywire_db::DbError::NotFound) => Err(ApiError::not_found(format!(
            "project `{}` has no environment `{}`",
            p.project.slug,
            slug.chars().take(64).collect::<String>()
        ))),
        Err(other) => Err(other.into()),
    }
}

/// One environment.
#[utoipa::path(tag = "environments", security(("bearer" = [])), params(("project" = String, Path, description = "Project slug"), ("environment" = String, Path, description = "Environment slug")), responses(
    (status = 200, description = "The environment", body = EnvironmentView),
    (status = 404, description = "No such project or environment", body = Problem),
))]
#[get("/projects/{project}/environments/{environment}")]
async fn get_environment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<EnvironmentView>, ApiError> {
    let (project, environment) = path.into_inner();
    let p = access::project(&state, &caller, &project).await?;
    Ok(web::Json(
        environment_in(&state, &p, &environment).await?.into(),
    ))
}

/// Renames or re-describes an environment; its slug stays.
#[utoipa::path(tag = "environments", security(("bearer" = [])), request_body = PatchBody, params(("project" = String, Path, description = "Project slug"), ("environment" = String, Path, description = "Environment slug")), responses(
    (status = 200, description = "Updated", body = EnvironmentView),
    (status = 400, description = "Invalid field", body = Problem),
    (status = 403, description = "Needs UPDATE_ENVIRONMENT", body = Problem),
    (status = 404, description = "No such project or environment", body = Problem),
    (status = 409, description = "Another environment has that name", body = Problem),
))]
#[patch("/projects/{project}/environments/{environment}")]
async fn update_environment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: Body<PatchBody>,
) -> Result<web::Json<EnvironmentView>, ApiError> {
    let (project, environment) = path.into_inner();
    let p = access::project(&state, &caller, &project).await?;
    p.require(Authority::UpdateEnvironment)?;
    let env = environment_in(&state, &p, &environment).await?;
    let (name, description) = patch_fields(&body.0)?;
    let updated = state
        .db
        .update_environment(
            &p.project,
            &env,
            name.as_deref(),
            description.as_ref().map(Option::as_deref),
            &caller.actor(),
        )
        .await?;
    Ok(web::Json(updated.into()))
}

/// Deletes an environment and every value it holds.
#[utoipa::path(tag = "environments", security(("bearer" = [])), params(("project" = String, Path, description = "Project slug"), ("environment" = String, Path, description = "Environment slug")), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "Needs DELETE_ENVIRONMENT", body = Problem),
    (status = 404, description = "No such project or environment", body = Problem),
))]
#[delete("/projects/{project}/environments/{environment}")]
async fn delete_environment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project, environment) = path.into_inner();
    let p = access::project(&state, &caller, &project).await?;
    p.require(Authority::DeleteEnvironment)?;
    let env = environment_in(&state, &p, &environment).await?;
    state
        .db
        .delete_environment(&p.project, &env, &caller.actor())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
