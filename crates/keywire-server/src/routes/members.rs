//! Workspace roles and members.
//!
//! A role is a named set of keyshade authorities, optionally limited to some projects (the
//! project-scoped authorities such as `READ_SECRET` then hold only inside them). Members are
//! users holding roles; administrators add them directly (no invitation to accept).
//!
//! Rules beyond the authority each route names:
//!
//! - only a caller holding `WORKSPACE_ADMIN` may grant it: create or change a role so that it
//!   holds it, give a role holding it, or change the roles of (or remove) a member holding it;
//! - the built-in `admin` role cannot be deleted, lose `WORKSPACE_ADMIN` or be limited to
//!   projects (409);
//! - the last member holding the `admin` role can neither lose it nor be removed (409);
//! - a member may always leave (`DELETE .../members/{own name}`), recorded as `LEFT_WORKSPACE`.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use keywire_core::{FieldError, FieldErrors};
use keywire_db::util::{check_description, check_name};
use keywire_db::{Authority, DbError, Member, NewRole, Role, RoleChanges, User};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::access::{self, InWorkspace};
use crate::auth::Caller;
use crate::body::{Body, nullable};
use crate::error::{ApiError, Problem};
use crate::routes::{List, PageQuery, iso};
use crate::state::AppState;

/// Most authorities, projects or roles one request may list.
const MAX_LIST: usize = 100;

/// Registers the routes.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.service(create_role)
        .service(list_roles)
        .service(get_role)
        .service(update_role)
        .service(delete_role)
        .service(add_member)
        .service(list_members)
        .service(get_member)
        .service(update_member)
        .service(remove_member);
}

/// A workspace role.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleView {
    /// Stable, unique in the workspace.
    pub slug: String,
    /// Display name, unique in the workspace.
    pub name: String,
    /// What the role is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The authorities it grants, sorted.
    pub authorities: Vec<String>,
    /// Slugs of the projects it is limited to; `null`: every project.
    pub projects: Option<Vec<String>>,
    /// The built-in `admin` role (cannot be deleted).
    pub is_admin_role: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl From<Role> for RoleView {
    fn from(role: Role) -> Self {
        RoleView {
            slug: role.slug,
            name: role.name,
            description: role.description,
            authorities: role
                .authorities
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            projects: role.project_slugs,
            is_admin_role: role.is_admin_role,
            created_at: iso(role.created_at),
            updated_at: iso(role.updated_at),
        }
    }
}

/// A member of a workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// The user's name.
    pub user: String,
    /// Slugs of the roles the member holds, sorted.
    pub roles: Vec<String>,
    /// When the user joined (RFC 3339).
    pub joined_at: String,
}

impl From<Member> for MemberView {
    fn from(member: Member) -> Self {
        MemberView {
            user: member.user_name,
            roles: member.roles,
            joined_at: iso(member.joined_at),
        }
    }
}

/// Body of `POST /workspaces/{workspace}/roles`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleBody {
    /// 1–64 characters, unique in the workspace; the slug comes from it.
    pub name: String,
    /// Up to 1000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// Authority names (`READ_SECRET`, ...), at most 100.
    pub authorities: Vec<String>,
    /// Slugs of projects of this workspace to limit the role to; absent or `null`: every
    /// project.
    #[serde(default)]
    pub projects: Option<Vec<String>>,
}

/// Body of `PATCH /workspaces/{workspace}/roles/{role}`: absent fields stay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RolePatchBody {
    /// A new name (the slug stays).
    #[serde(default)]
    pub name: Option<String>,
    /// A new description, or `null` to clear it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// The new set of authorities (replaces the old one).
    #[serde(default)]
    pub authorities: Option<Vec<String>>,
    /// Project slugs to limit the role to, or `null` for every project.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub projects: Option<Option<Vec<String>>>,
}

/// Body of `POST /workspaces/{workspace}/members`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddMemberBody {
    /// The user's name.
    pub user: String,
    /// Slugs of roles of this workspace to give (may be empty).
    pub roles: Vec<String>,
}

/// Body of `PATCH /workspaces/{workspace}/members/{user}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MemberRolesBody {
    /// Slugs of the roles the member holds from now on (replaces the old set; may be empty).
    pub roles: Vec<String>,
}

fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> ApiError {
    ApiError::fields(FieldErrors::one(pointer, detail), "")
}

fn forbidden(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail)
}

/// Like `ApiError::from`, but a conflict keeps its message: the rules of this module explain
/// themselves there (the last admin, the built-in role, a name in use).
pub(crate) fn explained(error: DbError) -> ApiError {
    match error {
        DbError::Conflict(why) => ApiError::new(StatusCode::CONFLICT, "conflict", why),
        other => other.into(),
    }
}

fn shown(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Parses authority names; an unknown one is a field error at `{pointer}/{index}`.
pub(crate) fn parse_authority_names(
    names: &[String],
    pointer: &str,
) -> Result<BTreeSet<Authority>, ApiError> {
    if names.len() > MAX_LIST {
        return Err(invalid(pointer, format!("at most {MAX_LIST} authorities")));
    }
    let mut errors = Vec::new();
    let mut set = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        match Authority::parse(name) {
            Some(authority) => {
                set.insert(authority);
            }
            None => errors.push(FieldError::new(
                format!("{pointer}/{i}"),
                format!(
                    "`{}` is not an authority (for example READ_SECRET or CREATE_PROJECT)",
                    shown(name)
                ),
            )),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(ApiError::fields(FieldErrors { errors }, ""))
    }
}

/// Resolves project slugs of the workspace to ids; an unknown slug is a field error.
async fn project_ids(
    state: &AppState,
    ws: &InWorkspace,
    slugs: &[String],
) -> Result<Vec<String>, ApiError> {
    if slugs.is_empty() {
        return Err(invalid(
            "/projects",
            "leave `projects` out (or null) for every project; an empty list would grant none",
        ));
    }
    if slugs.len() > MAX_LIST {
        return Err(invalid("/projects", format!("at most {MAX_LIST} projects")));
    }
    let found = state.db.projects_by_slugs(&ws.workspace.id, slugs).await?;
    let errors: Vec<FieldError> = slugs
        .iter()
        .enumerate()
        .filter(|(_, slug)| !found.iter().any(|p| &p.slug == *slug))
        .map(|(i, slug)| {
            FieldError::new(
                format!("/projects/{i}"),
                format!("no project `{}` in this workspace", shown(slug)),
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::fields(FieldErrors { errors }, ""));
    }
    Ok(found.into_iter().map(|p| p.id).collect())
}

/// Resolves role slugs of the workspace; an unknown slug is a field error at `/roles/{i}`.
async fn roles_named(
    state: &AppState,
    ws: &InWorkspace,
    slugs: &[String],
) -> Result<Vec<Role>, ApiError> {
    if slugs.len() > MAX_LIST {
        return Err(invalid("/roles", format!("at most {MAX_LIST} roles")));
    }
    let found = state.db.roles_by_slugs(&ws.workspace.id, slugs).await?;
    let errors: Vec<FieldError> = slugs
        .iter()
        .enumerate()
        .filter(|(_, slug)| !found.iter().any(|r| &r.slug == *slug))
        .map(|(i, slug)| {
            FieldError::new(
                format!("/roles/{i}"),
                format!("no role `{}` in this workspace", shown(slug)),
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::fields(FieldErrors { errors }, ""));
    }
    Ok(found)
}

/// 403 unless the caller may hand out `WORKSPACE_ADMIN` (holds it).
fn may_grant_admin(ws: &InWorkspace) -> Result<(), ApiError> {
    if ws.access.can(Authority::WorkspaceAdmin, None) {
        Ok(())
    } else {
        Err(forbidden(
            "only a holder of WORKSPACE_ADMIN may grant it or change who holds it",
        ))
    }
}

fn holds_admin(roles: &[Role]) -> bool {
    roles
        .iter()
        .any(|r| r.authorities.contains(&Authority::WorkspaceAdmin))
}

async fn role_in(state: &AppState, ws: &InWorkspace, slug: &str) -> Result<Role, ApiError> {
    match state.db.role_by_slug(&ws.workspace.id, slug).await {
        Ok(role) => Ok(role),
        Err(DbError::NotFound) => Err(ApiError::not_found(format!(
            "no role `{}` in this workspace",
            shown(slug)
        ))),
        Err(other) => Err(other.into()),
    }
}

/// The user `name` and their membership; 404 when either is missing.
async fn member_in(
    state: &AppState,
    ws: &InWorkspace,
    name: &str,
) -> Result<(User, Member), ApiError> {
    let missing = || ApiError::not_found(format!("no member `{}` in this workspace", shown(name)));
    let user = match state.db.user_by_name(name).await {
        Ok(user) => user,
        Err(DbError::NotFound) => return Err(missing()),
        Err(other) => return Err(other.into()),
    };
    match state.db.member(&ws.workspace.id, &user.id).await {
        Ok(member) => Ok((user, member)),
        Err(DbError::NotFound) => Err(missing()),
        Err(other) => Err(other.into()),
    }
}

/// Creates a role.
#[utoipa::path(tag = "members", security(("bearer" = [])), request_body = RoleBody,
    params(("workspace" = String, Path, description = "Workspace slug")),
    responses(
        (status = 201, description = "Created", body = RoleView),
        (status = 400, description = "Invalid field: name, an unknown authority (`/authorities/{i}`) or project (`/projects/{i}`)", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs CREATE_WORKSPACE_ROLE (and WORKSPACE_ADMIN to grant WORKSPACE_ADMIN)", body = Problem),
        (status = 404, description = "No such workspace, or not visible to the caller", body = Problem),
        (status = 409, description = "The workspace has a role of that name", body = Problem),
    ))]
#[post("/workspaces/{workspace}/roles")]
async fn create_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    ws.require(Authority::CreateWorkspaceRole)?;
    let body = body.0;
    let name = check_name(&body.name).map_err(|why| invalid("/name", why))?;
    let description = check_description(body.description.as_deref())
        .map_err(|why| invalid("/description", why))?;
    let authorities = parse_authority_names(&body.authorities, "/authorities")?;
    let project_ids = match &body.projects {
        Some(slugs) => Some(project_ids(&state, &ws, slugs).await?),
        None => None,
    };
    if authorities.contains(&Authority::WorkspaceAdmin) {
        may_grant_admin(&ws)?;
    }
    let new = NewRole {
        name,
        description,
        authorities,
        project_ids,
    };
    let role = state
        .db
        .create_role(&ws.workspace, &new, &caller.actor())
        .await
        .map_err(explained)?;
    Ok(HttpResponse::Created().json(RoleView::from(role)))
}

/// The roles of a workspace, by slug.
#[utoipa::path(tag = "members", security(("bearer" = [])),
    params(("workspace" = String, Path, description = "Workspace slug"), PageQuery),
    responses(
        (status = 200, description = "One page of roles", body = List<RoleView>),
        (status = 400, description = "Bad cursor or limit", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs READ_WORKSPACE_ROLE", body = Problem),
        (status = 404, description = "No such workspace, or not visible to the caller", body = Problem),
    ))]
#[get("/workspaces/{workspace}/roles")]
async fn list_roles(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<List<RoleView>>, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    ws.require(Authority::ReadWorkspaceRole)?;
    let page = state.db.list_roles(&ws.workspace.id, &query.page()).await?;
    Ok(web::Json(List::of(page, RoleView::from)))
}

/// One role.
#[utoipa::path(tag = "members", security(("bearer" = [])),
    params(("workspace" = String, Path, description = "Workspace slug"), ("role" = String, Path, description = "Role slug")),
    responses(
        (status = 200, description = "The role", body = RoleView),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs READ_WORKSPACE_ROLE", body = Problem),
        (status = 404, description = "No such workspace or role", body = Problem),
    ))]
#[get("/workspaces/{workspace}/roles/{role}")]
async fn get_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<RoleView>, ApiError> {
    let (workspace, slug) = path.into_inner();
    let ws = access::workspace(&state, &caller, &workspace).await?;
    ws.require(Authority::ReadWorkspaceRole)?;
    Ok(web::Json(role_in(&state, &ws, &slug).await?.into()))
}

/// Changes a role: name, description, authorities, project limit. Its slug stays.
#[utoipa::path(tag = "members", security(("bearer" = [])), request_body = RolePatchBody,
    params(("workspace" = String, Path, description = "Workspace slug"), ("role" = String, Path, description = "Role slug")),
    responses(
        (status = 200, description = "Changed", body = RoleView),
        (status = 400, description = "Invalid field (pointer into the body)", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs UPDATE_WORKSPACE_ROLE (and WORKSPACE_ADMIN when WORKSPACE_ADMIN is given or taken)", body = Problem),
        (status = 404, description = "No such workspace or role", body = Problem),
        (status = 409, description = "The name is in use, or the admin role would lose WORKSPACE_ADMIN or be limited to projects", body = Problem),
    ))]
#[patch("/workspaces/{workspace}/roles/{role}")]
async fn update_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: Body<RolePatchBody>,
) -> Result<web::Json<RoleView>, ApiError> {
    let (workspace, slug) = path.into_inner();
    let ws = access::workspace(&state, &caller, &workspace).await?;
    ws.require(Authority::UpdateWorkspaceRole)?;
    let role = role_in(&state, &ws, &slug).await?;
    let body = body.0;
    let name = body
        .name
        .as_deref()
        .map(check_name)
        .transpose()
        .map_err(|why| invalid("/name", why))?;
    let description = match &body.description {
        None => None,
        Some(text) => {
            Some(check_description(text.as_deref()).map_err(|why| invalid("/description", why))?)
        }
    };
    let authorities = body
        .authorities
        .as_deref()
        .map(|names| parse_authority_names(names, "/authorities"))
        .transpose()?;
    let project_ids = match &body.projects {
        None => None,
        Some(None) => Some(None),
        Some(Some(slugs)) => Some(Some(project_ids(&state, &ws, slugs).await?)),
    };
    let was_admin = role.authorities.contains(&Authority::WorkspaceAdmin);
    let is_admin = authorities
        .as_ref()
        .map_or(was_admin, |set| set.contains(&Authority::WorkspaceAdmin));
    if is_admin || was_admin {
        if role.is_admin_role && !is_admin {
            return Err(explained(DbError::Conflict(
                "the admin role always holds WORKSPACE_ADMIN".into(),
            )));
        }
        if was_admin != is_admin || project_ids.is_some() {
            may_grant_admin(&ws)?;
        }
    }
    let changes = RoleChanges {
        name,
        description,
        authorities,
        project_ids,
    };
    let updated = state
        .db
        .update_role(&ws.workspace, &role, &changes, &caller.actor())
        .await
        .map_err(explained)?;
    Ok(web::Json(updated.into()))
}

/// Deletes a role; its holders lose it.
#[utoipa::path(tag = "members", security(("bearer" = [])),
    params(("workspace" = String, Path, description = "Workspace slug"), ("role" = String, Path, description = "Role slug")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs DELETE_WORKSPACE_ROLE (and WORKSPACE_ADMIN for a role holding it)", body = Problem),
        (status = 404, description = "No such workspace or role", body = Problem),
        (status = 409, description = "The built-in admin role cannot be deleted", body = Problem),
    ))]
#[delete("/workspaces/{workspace}/roles/{role}")]
async fn delete_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (workspace, slug) = path.into_inner();
    let ws = access::workspace(&state, &caller, &workspace).await?;
    ws.require(Authority::DeleteWorkspaceRole)?;
    let role = role_in(&state, &ws, &slug).await?;
    if role.authorities.contains(&Authority::WorkspaceAdmin) && !role.is_admin_role {
        may_grant_admin(&ws)?;
    }
    state
        .db
        .delete_role(&ws.workspace, &role, &caller.actor())
        .await
        .map_err(explained)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Adds a user to the workspace with roles. keywire adds members directly; the event is
/// `INVITED_TO_WORKSPACE` with `"direct": true` in its payload.
#[utoipa::path(tag = "members", security(("bearer" = [])), request_body = AddMemberBody,
    params(("workspace" = String, Path, description = "Workspace slug")),
    responses(
        (status = 201, description = "Added", body = MemberView),
        (status = 400, description = "Unknown user (`/user`) or role (`/roles/{i}`)", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs ADD_USER (and WORKSPACE_ADMIN to give a role holding it)", body = Problem),
        (status = 404, description = "No such workspace, or not visible to the caller", body = Problem),
        (status = 409, description = "The user is a member already", body = Problem),
    ))]
#[post("/workspaces/{workspace}/members")]
async fn add_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<AddMemberBody>,
) -> Result<HttpResponse, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    ws.require(Authority::AddUser)?;
    let body = body.0;
    let user = match state.db.user_by_name(&body.user).await {
        Ok(user) => user,
        Err(DbError::NotFound) => {
            return Err(invalid("/user", format!("no user `{}`", shown(&body.user))));
        }
        Err(other) => return Err(other.into()),
    };
    let roles = roles_named(&state, &ws, &body.roles).await?;
    if holds_admin(&roles) {
        may_grant_admin(&ws)?;
    }
    let member = state
        .db
        .add_member(&ws.workspace, &user, &roles, &caller.actor())
        .await
        .map_err(explained)?;
    Ok(HttpResponse::Created().json(MemberView::from(member)))
}

/// The members of a workspace, by user name.
#[utoipa::path(tag = "members", security(("bearer" = [])),
    params(("workspace" = String, Path, description = "Workspace slug"), PageQuery),
    responses(
        (status = 200, description = "One page of members", body = List<MemberView>),
        (status = 400, description = "Bad cursor or limit", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs READ_USERS", body = Problem),
        (status = 404, description = "No such workspace, or not visible to the caller", body = Problem),
    ))]
#[get("/workspaces/{workspace}/members")]
async fn list_members(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<List<MemberView>>, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    ws.require(Authority::ReadUsers)?;
    let page = state
        .db
        .list_members(&ws.workspace.id, &query.page())
        .await?;
    Ok(web::Json(List::of(page, MemberView::from)))
}

/// One member.
#[utoipa::path(tag = "members", security(("bearer" = [])),
    params(("workspace" = String, Path, description = "Workspace slug"), ("user" = String, Path, description = "User name")),
    responses(
        (status = 200, description = "The member", body = MemberView),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs READ_USERS (except for oneself)", body = Problem),
        (status = 404, description = "No such workspace or member", body = Problem),
    ))]
#[get("/workspaces/{workspace}/members/{user}")]
async fn get_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<MemberView>, ApiError> {
    let (workspace, name) = path.into_inner();
    let ws = access::workspace(&state, &caller, &workspace).await?;
    if name != caller.user.name {
        ws.require(Authority::ReadUsers)?;
    }
    let (_, member) = member_in(&state, &ws, &name).await?;
    Ok(web::Json(member.into()))
}

/// Replaces the roles of a member.
#[utoipa::path(tag = "members", security(("bearer" = [])), request_body = MemberRolesBody,
    params(("workspace" = String, Path, description = "Workspace slug"), ("user" = String, Path, description = "User name")),
    responses(
        (status = 200, description = "Changed", body = MemberView),
        (status = 400, description = "Unknown role (`/roles/{i}`)", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs UPDATE_USER_ROLE (and WORKSPACE_ADMIN when a role holding it is given or taken)", body = Problem),
        (status = 404, description = "No such workspace or member", body = Problem),
        (status = 409, description = "The member is the last holder of the admin role", body = Problem),
    ))]
#[patch("/workspaces/{workspace}/members/{user}")]
async fn update_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: Body<MemberRolesBody>,
) -> Result<web::Json<MemberView>, ApiError> {
    let (workspace, name) = path.into_inner();
    let ws = access::workspace(&state, &caller, &workspace).await?;
    ws.require(Authority::UpdateUserRole)?;
    let (user, member) = member_in(&state, &ws, &name).await?;
    let roles = roles_named(&state, &ws, &body.0.roles).await?;
    let held = state
        .db
        .roles_by_slugs(&ws.workspace.id, &member.roles)
        .await?;
    if holds_admin(&roles) || holds_admin(&held) {
        may_grant_admin(&ws)?;
    }
    let updated = state
        .db
        .set_member_roles(&ws.workspace, &user, &roles, &caller.actor())
        .await
        .map_err(explained)?;
    Ok(web::Json(updated.into()))
}

/// Removes a member; a member may always remove themselves (leave).
#[utoipa::path(tag = "members", security(("bearer" = [])),
    params(("workspace" = String, Path, description = "Workspace slug"), ("user" = String, Path, description = "User name")),
    responses(
        (status = 204, description = "Removed (`REMOVED_FROM_WORKSPACE`) or left (`LEFT_WORKSPACE`)"),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs REMOVE_USER (and WORKSPACE_ADMIN to remove a holder of it)", body = Problem),
        (status = 404, description = "No such workspace or member", body = Problem),
        (status = 409, description = "The member is the last holder of the admin role", body = Problem),
    ))]
#[delete("/workspaces/{workspace}/members/{user}")]
async fn remove_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (workspace, name) = path.into_inner();
    let ws = access::workspace(&state, &caller, &workspace).await?;
    let leaving = name == caller.user.name;
    if !leaving {
        ws.require(Authority::RemoveUser)?;
    }
    let (user, member) = member_in(&state, &ws, &name).await?;
    if !leaving {
        let held = state
            .db
            .roles_by_slugs(&ws.workspace.id, &member.roles)
            .await?;
        if holds_admin(&held) {
            may_grant_admin(&ws)?;
        }
    }
    state
        .db
        .remove_member(&ws.workspace, &user, &caller.actor())
        .await
        .map_err(explained)?;
    Ok(HttpResponse::NoContent().finish())
}
