//! Who may do what: resolves the caller's rights in a workspace or project, and turns a
//! missing right into the right error.
//!
//! Policy: a workspace or project the caller cannot see answers 404, exactly like one that does
//! not exist (so names do not leak across workspaces); one the caller can see but not change
//! answers 403 naming the missing authority.

use actix_web::http::StatusCode;
use keywire_core::Actor;
use keywire_db::{Access, Authority, DbError, Project, Workspace, parse_authorities};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

impl Caller {
    /// The caller as the actor of events.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.user.id.clone(),
            name: self.user.name.clone(),
        }
    }

    fn limit(&self, mut access: Access) -> Access {
        access.token_limit = self.token.authorities.as_deref().map(parse_authorities);
        access
    }
}

fn forbidden(authority: Authority) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("this needs the {authority} authority"),
    )
}

/// A workspace the caller can see, with the caller's rights in it.
#[derive(Debug, Clone)]
pub struct InWorkspace {
    /// The workspace.
    pub workspace: Workspace,
    /// The caller's rights.
    pub access: Access,
}

impl InWorkspace {
    /// 403 unless the caller holds `authority` (for no particular project).
    pub fn require(&self, authority: Authority) -> Result<(), ApiError> {
        if self.access.can(authority, None) {
            Ok(())
        } else {
            Err(forbidden(authority))
        }
    }

    /// 403 unless the caller holds `authority` for `project` (an id).
    pub fn require_in(&self, authority: Authority, project: &str) -> Result<(), ApiError> {
        if self.access.can(authority, Some(project)) {
            Ok(())
        } else {
            Err(forbidden(authority))
        }
    }
}

/// A project the caller can see (holds `READ_PROJECT` on it), with its workspace.
#[derive(Debug, Clone)]
pub struct InProject {
    /// The workspace.
    pub workspace: Workspace,
    /// The project.
    pub project: Project,
    /// The caller's rights in the workspace.
    pub access: Access,
}

impl InProject {
    /// 403 unless the caller holds `authority` on this project.
    pub fn require(&self, authority: Authority) -> Result<(), ApiError> {
        if self.access.can(authority, Some(&self.project.id)) {
            Ok(())
        } else {
            Err(forbidden(authority))
        }
    }

    /// Whether the caller holds `authority` on this project.
    pub fn can(&self, authority: Authority) -> bool {
        self.access.can(authority, Some(&self.project.id))
    }
}

fn shown(slug: &str) -> String {
    slug.chars().take(64).collect()
}

/// The workspace `slug` if the caller can see it; 404 otherwise.
pub async fn workspace(
    state: &AppState,
    caller: &Caller,
    slug: &str,
) -> Result<InWorkspace, ApiError> {
    let missing = || ApiError::not_found(format!("no workspace `{}`", shown(slug)));
    let workspace = match state.db.workspace_by_slug(slug).await {
        Ok(workspace) => workspace,
        Err(DbError::NotFound) => return Err(missing()),
        Err(other) => return Err(other.into()),
    };
    let access = caller.limit(
        state
            .db
            .access(&caller.user.id, &workspace.id, caller.user.is_admin)
            .await?,
    );
    if !access.sees_workspace() {
        return Err(missing());
    }
    Ok(InWorkspace { workspace, access })
}

/// The project `slug` if the caller holds `READ_PROJECT` on it; 404 otherwise.
pub async fn project(state: &AppState, caller: &Caller, slug: &str) -> Result<InProject, ApiError> {
    let missing = || ApiError::not_found(format!("no project `{}`", shown(slug)));
    let project = match state.db.project_by_slug(slug).await {
        Ok(project) => project,
        Err(DbError::NotFound) => return Err(missing()),
        Err(other) => return Err(other.into()),
    };
    let workspace = state.db.workspace_by_id(&project.workspace_id).await?;
    let access = caller.limit(
        state
            .db
            .access(&caller.user.id, &workspace.id, caller.user.is_admin)
            .await?,
    );
    if !access.can(Authority::ReadProject, Some(&project.id)) {
        return Err(missing());
    }
    Ok(InProject {
        workspace,
        project,
        access,
    })
}
