//! Authorities (keyshade's names), roles made of them, and what a caller may do in a workspace.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::with_conn;
use crate::schema::{member_roles, workspace_roles};
use crate::{Db, DbError};

macro_rules! authorities {
    ($($variant:ident = $wire:literal, $project:literal;)*) => {
        /// Something a workspace member may be allowed to do. Roles are sets of these.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Authority {
            $(#[doc = concat!("`", $wire, "`")] $variant,)*
        }

        impl Authority {
            /// Every authority.
            pub const ALL: &'static [Authority] = &[$(Authority::$variant,)*];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self { $(Authority::$variant => $wire,)* }
            }

            /// Parses a wire name.
            pub fn parse(name: &str) -> Option<Authority> {
                match name { $($wire => Some(Authority::$variant),)* _ => None }
            }

            /// Whether a role limited to some projects grants this authority only inside them.
            /// Workspace-level authorities (reading the workspace, managing members) are not
            /// narrowed by a project limit.
            pub const fn is_project_scoped(self) -> bool {
                match self { $(Authority::$variant => $project,)* }
            }
        }
    };
}

authorities! {
    WorkspaceAdmin = "WORKSPACE_ADMIN", false;
    ReadWorkspace = "READ_WORKSPACE", false;
    UpdateWorkspace = "UPDATE_WORKSPACE", false;
    DeleteWorkspace = "DELETE_WORKSPACE", false;
    ReadUsers = "READ_USERS", false;
    AddUser = "ADD_USER", false;
    RemoveUser = "REMOVE_USER", false;
    UpdateUserRole = "UPDATE_USER_ROLE", false;
    CreateWorkspaceRole = "CREATE_WORKSPACE_ROLE", false;
    ReadWorkspaceRole = "READ_WORKSPACE_ROLE", false;
    UpdateWorkspaceRole = "UPDATE_WORKSPACE_ROLE", false;
    DeleteWorkspaceRole = "DELETE_WORKSPACE_ROLE", false;
    CreateProject = "CREATE_PROJECT", false;
    ReadProject = "READ_PROJECT", true;
    UpdateProject = "UPDATE_PROJECT", true;
    DeleteProject = "DELETE_PROJECT", true;
    CreateEnvironment = "CREATE_ENVIRONMENT", true;
    ReadEnvironment = "READ_ENVIRONMENT", true;
    UpdateEnvironment = "UPDATE_ENVIRONMENT", true;
    DeleteEnvironment = "DELETE_ENVIRONMENT", true;
    CreateSecret = "CREATE_SECRET", true;
    ReadSecret = "READ_SECRET", true;
    UpdateSecret = "UPDATE_SECRET", true;
    DeleteSecret = "DELETE_SECRET", true;
    CreateVariable = "CREATE_VARIABLE", true;
    ReadVariable = "READ_VARIABLE", true;
    UpdateVariable = "UPDATE_VARIABLE", true;
    DeleteVariable = "DELETE_VARIABLE", true;
    CreateIntegration = "CREATE_INTEGRATION", false;
    ReadIntegration = "READ_INTEGRATION", false;
    UpdateIntegration = "UPDATE_INTEGRATION", false;
    DeleteIntegration = "DELETE_INTEGRATION", false;
    ReadEvent = "READ_EVENT", false;
}

impl std::fmt::Display for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a JSON array of authority names as stored; unknown names are skipped (a newer
/// version may have written them).
pub fn parse_authorities(json: &str) -> BTreeSet<Authority> {
    serde_json::from_str::<Vec<String>>(json)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| Authority::parse(name))
        .collect()
}

/// A JSON array of authority names, for storing.
pub fn authorities_json(set: &BTreeSet<Authority>) -> String {
    serde_json::to_string(&set.iter().map(|a| a.as_str()).collect::<Vec<_>>())
        .expect("strings serialize")
}

/// One role's contribution to a member's rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// What the role allows.
    pub authorities: BTreeSet<Authority>,
    /// The projects (ids) it is limited to; `None`: all.
    pub projects: Option<Vec<String>>,
}

/// What one caller may do in one workspace: the union of the member's roles, narrowed by the
/// token's limit if it has one. Server administrators may do everything everywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// The caller administers the whole server.
    pub server_admin: bool,
    /// The caller is a member of the workspace.
    pub member: bool,
    /// The member's roles.
    pub grants: Vec<Grant>,
    /// The token's limit, if any.
    pub token_limit: Option<BTreeSet<Authority>>,
}

impl Access {
    /// Whether the caller may see the workspace at all.
    pub fn sees_workspace(&self) -> bool {
        self.server_admin || self.member
    }

    /// Whether the caller holds `authority`, for `project` (an id) when the action concerns
    /// one. A project-scoped authority asked without a project is held only through a role
    /// that is not limited to projects.
    pub fn can(&self, authority: Authority, project: Option<&str>) -> bool {
        if let Some(limit) = &self.token_limit
            && !limit.contains(&authority)
            && !limit.contains(&Authority::WorkspaceAdmin)
        {
            return false;
        }
        if self.server_admin {
            return true;
        }
        self.grants.iter().any(|grant| {
            let admin = grant.authorities.contains(&Authority::WorkspaceAdmin);
            match &grant.projects {
                None => admin || grant.authorities.contains(&authority),
                // A role limited to projects: project authorities (all of them when it holds
                // WORKSPACE_ADMIN) inside those projects only, and its workspace-level
                // authorities, but never WORKSPACE_ADMIN over the whole workspace.
                Some(ids) if authority.is_project_scoped() => {
                    (admin || grant.authorities.contains(&authority))
                        && project.is_some_and(|p| ids.iter().any(|id| id == p))
                }
                Some(_) => {
                    authority != Authority::WorkspaceAdmin && grant.authorities.contains(&authority)
                }
            }
        })
    }
}

impl Db {
    /// The roles `user_id` holds in `workspace_id`, as [`Access`] (no token limit applied).
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn access(
        &self,
        user_id: &str,
        workspace_id: &str,
        server_admin: bool,
    ) -> Result<Access, DbError> {
        let rows: Vec<(String, Option<String>)> = with_conn!(self, |conn| {
            member_roles::table
                .inner_join(workspace_roles::table)
                .filter(member_roles::workspace_id.eq(workspace_id))
                .filter(member_roles::user_id.eq(user_id))
                .select((workspace_roles::authorities, workspace_roles::project_ids))
                .load(conn)
                .await?
        });
        let member = if rows.is_empty() {
            self.is_member(user_id, workspace_id).await?
        } else {
            true
        };
        let grants = rows
            .into_iter()
            .map(|(authorities, projects)| Grant {
                authorities: parse_authorities(&authorities),
                projects: projects.map(|p| serde_json::from_str(&p).unwrap_or_default()),
            })
            .collect();
        Ok(Access {
            server_admin,
            member,
            grants,
            token_limit: None,
        })
    }

    async fn is_member(&self, user_id: &str, workspace_id: &str) -> Result<bool, DbError> {
        use crate::schema::workspace_members;
        let count: i64 = with_conn!(self, |conn| {
            workspace_members::table
                .filter(workspace_members::workspace_id.eq(workspace_id))
                .filter(workspace_members::user_id.eq(user_id))
                .count()
                .get_result(conn)
                .await?
        });
        Ok(count > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(authorities: &[Authority], projects: Option<&[&str]>) -> Grant {
        Grant {
            authorities: authorities.iter().copied().collect(),
            projects: projects.map(|p| p.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn names_round_trip() {
        for a in Authority::ALL {
            assert_eq!(Authority::parse(a.as_str()), Some(*a));
        }
        assert_eq!(Authority::parse("BE_GOD"), None);
    }

    #[test]
    fn project_limits_narrow_only_project_authorities() {
        let access = Access {
            member: true,
            grants: vec![grant(
                &[
                    Authority::ReadProject,
                    Authority::ReadWorkspace,
                    Authority::ReadSecret,
                ],
                Some(&["p1"]),
            )],
            ..Access::default()
        };
        assert!(access.can(Authority::ReadProject, Some("p1")));
        assert!(!access.can(Authority::ReadProject, Some("p2")));
        assert!(!access.can(Authority::ReadProject, None));
        assert!(access.can(Authority::ReadWorkspace, None));
        assert!(!access.can(Authority::UpdateSecret, Some("p1")));
    }

    #[test]
    fn a_project_limited_admin_role_administers_only_its_projects() {
        let access = Access {
            member: true,
            grants: vec![grant(&[Authority::WorkspaceAdmin], Some(&["p1"]))],
            ..Access::default()
        };
        assert!(access.can(Authority::UpdateSecret, Some("p1")));
        assert!(access.can(Authority::DeleteProject, Some("p1")));
        assert!(!access.can(Authority::ReadProject, Some("p2")));
        assert!(!access.can(Authority::WorkspaceAdmin, None));
        assert!(!access.can(Authority::DeleteWorkspace, None));
    }

    #[test]
    fn admins_and_token_limits() {
        let admin = Access {
            member: true,
            grants: vec![grant(&[Authority::WorkspaceAdmin], None)],
            ..Access::default()
        };
        assert!(admin.can(Authority::DeleteWorkspace, None));
        assert!(admin.can(Authority::UpdateSecret, Some("any")));
        let limited = Access {
            token_limit: Some([Authority::ReadSecret].into_iter().collect()),
            ..admin
        };
        assert!(limited.can(Authority::ReadSecret, Some("any")));
        assert!(!limited.can(Authority::UpdateSecret, Some("any")));
        let server = Access {
            server_admin: true,
            ..Access::default()
        };
        assert!(server.sees_workspace() && server.can(Authority::DeleteWorkspace, None));
        assert!(!Access::default().sees_workspace());
    }
}
