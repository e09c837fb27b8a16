//! The access-control matrix: one representative request per route, sent by each of seven
//! callers, with the expected status of every cell in the table.
//!
//! Callers: no token, a malformed token, a revoked token (the server admin's own, so revoking
//! must matter), a member of another workspace (its admin there), a member of the workspace
//! holding what it takes to see the object but not the authority the route needs, a member
//! holding it, and the server admin. What a caller cannot see answers 404 exactly like what
//! does not exist; what they can see but not change answers 403 naming the authority; every
//! 401 carries `WWW-Authenticate: Bearer`.
//!
//! Routes that destroy or create are given a fresh object (or a fresh name) per cell, so each
//! cell sees the same world. Failing cells are collected and reported together.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use keywire_test_support::TestDb;
use keywire_test_support::fake::{FakeResponse, FakeServer};
use keywire_test_support::vercel::{self, FakeVercel};
use serde_json::{Value, json};

use crate::support::{ADMIN, Api, RawAnswer};

/// The seven callers, in the order of the table's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    NoToken,
    Malformed,
    Revoked,
    Outsider,
    Without,
    With,
    Admin,
}

const CALLERS: [Caller; 7] = [
    Caller::NoToken,
    Caller::Malformed,
    Caller::Revoked,
    Caller::Outsider,
    Caller::Without,
    Caller::With,
    Caller::Admin,
];

/// A token that is no token.
const MALFORMED: &str = "Bearer kw_malformed.token/with spaces";

/// What a route needs a fresh one of for each cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Nothing,
    Workspace,
    Project,
    Environment,
    Secret,
    Variable,
    Role,
    User,
    Member,
    Integration,
    /// One of the caller's own tokens.
    OwnToken,
    /// A failed run of the `failing` integration (one per cell that may retry it).
    FailedRun,
}

/// A set of authorities held through one role, optionally limited to projects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    authorities: Vec<&'static str>,
}

pub(crate) struct Route {
    pub(crate) method: &'static str,
    /// With `{n}` (a number unique to the cell), `{fresh}` (the fresh object), `{run}` (a run
    /// of the `failing` integration) and `{hook}` (the receiver's URL).
    pub(crate) path: String,
    pub(crate) body: Option<Value>,
    fresh: Fresh,
    /// What both members hold (to see the object).
    sees: Vec<&'static str>,
    /// What only the member "with" holds: the route's authority.
    needs: Vec<&'static str>,
    /// The status of each cell, in the order of [`CALLERS`].
    pub(crate) expect: [u16; 7],
    /// What a 403 must name (default: the first of `needs`).
    names: Option<&'static str>,
    /// The dry run: 200 for a member without the authority, with the `authority` check failed.
    dry_run: bool,
}

fn route(method: &'static str, path: impl Into<String>) -> Route {
    Route {
        method,
        path: path.into(),
        body: None,
        fresh: Fresh::Nothing,
        sees: Vec::new(),
        needs: Vec::new(),
        expect: [0; 7],
        names: None,
        dry_run: false,
    }
}

impl Route {
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn fresh(mut self, fresh: Fresh) -> Self {
        self.fresh = fresh;
        self
    }

    fn sees(mut self, authorities: &[&'static str]) -> Self {
        self.sees = authorities.to_vec();
        self
    }

    fn needs(mut self, authorities: &[&'static str]) -> Self {
        self.needs = authorities.to_vec();
        self
    }

    /// A workspace-scoped route: outsiders 404, members without the authority 403.
    fn scoped(mut self, allowed: u16) -> Self {
        self.expect = [401, 401, 401, 404, 403, allowed, allowed];
        self
    }

    /// A route on an object the member without the authority cannot see: 404 for them too.
    fn hidden(mut self, allowed: u16) -> Self {
        self.expect = [401, 401, 401, 404, 404, allowed, allowed];
        self
    }

    /// Any authenticated caller.
    fn signed_in(mut self, allowed: u16) -> Self {
        self.expect = [401, 401, 401, allowed, allowed, allowed, allowed];
        self
    }

    /// Server administrators only (no workspace authority is enough).
    fn server_admin(mut self, allowed: u16) -> Self {
        self.expect = [401, 401, 401, 403, 403, 403, allowed];
        self.names = Some("server administrators");
        self.needs = vec!["WORKSPACE_ADMIN"];
        self
    }

    /// No token needed at all.
    fn public(mut self) -> Self {
        self.expect = [200; 7];
        self
    }

    fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn grant(&self, caller: Caller) -> Option<Grant> {
        let mut authorities = self.sees.clone();
        match caller {
            Caller::Without => {}
            Caller::With => authorities.extend(self.needs.iter().copied()),
            _ => return None,
        }
        authorities.sort_unstable();
        authorities.dedup();
        Some(Grant { authorities })
    }
}

/// Every route of the API, one representative request each.
pub(crate) fn routes() -> Vec<Route> {
    let webhook = |name: &str| {
        json!({"name": name, "type": "webhook", "notifyOn": ["DECLINED_INVITATION"],
               "metadata": {"url": "{hook}"}})
    };
    let entries = |kind: &'static str, create, read, update, delete| -> Vec<Route> {
        let at = |p: &str| format!("/api/v1/projects/shop/{kind}{p}");
        vec![
            route("PUT", at("/NEW_{n}"))
                .body(json!({"values": {"dev": "v"}}))
                .sees(&["READ_PROJECT"])
                .needs(&[create])
                .scoped(201),
            route("PUT", at(""))
                .body(json!({"items": [{"key": "BULK_{n}", "values": {"dev": "v"}}]}))
                .sees(&["READ_PROJECT"])
                .needs(&[create])
                .scoped(200),
            route("GET", at("?reveal=true"))
                .sees(&["READ_PROJECT"])
                .needs(&[read])
                .scoped(200),
            route("GET", at("/ENTRY_KEY?reveal=true"))
                .sees(&["READ_PROJECT"])
                .needs(&[read])
                .scoped(200),
            route("GET", at("/ENTRY_KEY/versions?environment=dev&reveal=true"))
                .sees(&["READ_PROJECT"])
                .needs(&[read])
                .scoped(200),
            route("POST", at("/ENTRY_KEY/rollback"))
                .body(json!({"environment": "dev", "version": 1}))
                .sees(&["READ_PROJECT"])
                .needs(&[update])
                .scoped(200),
            route("DELETE", at("/{fresh}"))
                .fresh(if kind == "secrets" {
                    Fresh::Secret
                } else {
                    Fresh::Variable
                })
                .sees(&["READ_PROJECT"])
                .needs(&[delete])
                .scoped(204),
        ]
    };
    let mut all = vec![
        // Unauthenticated by design.
        route("GET", "/health").public(),
        route("GET", "/ready").public(),
        route("GET", "/openapi.json").public(),
        route("GET", "/metrics").public(),
        route("GET", "/").public(),
        route("GET", "/console/style.css").public(),
        // The caller and their tokens.
        route("GET", "/api/v1/me").signed_in(200),
        route("POST", "/api/v1/me/tokens")
            .body(json!({"name": "t{n}"}))
            .signed_in(201),
        route("GET", "/api/v1/me/tokens").signed_in(200),
        route("DELETE", "/api/v1/me/tokens/{fresh}")
            .fresh(Fresh::OwnToken)
            .signed_in(204),
        route("GET", "/api/v1/integration-types").signed_in(200),
        route("GET", "/api/v1/integration-types/webhook").signed_in(200),
        // Users: server administrators only.
        route("POST", "/api/v1/users")
            .body(json!({"name": "made{n}"}))
            .server_admin(201),
        route("GET", "/api/v1/users").server_admin(200),
        route("GET", "/api/v1/users/target").server_admin(200),
        route("DELETE", "/api/v1/users/{fresh}")
            .fresh(Fresh::User)
            .server_admin(204),
        // Workspaces.
        route("POST", "/api/v1/workspaces")
            .body(json!({"name": "Made {n}"}))
            .signed_in(201),
        route("GET", "/api/v1/workspaces").signed_in(200),
        route("GET", "/api/v1/workspaces/acme")
            .needs(&["READ_WORKSPACE"])
            .scoped(200),
        route("PATCH", "/api/v1/workspaces/acme")
            .body(json!({"name": "Acme {n}"}))
            .needs(&["UPDATE_WORKSPACE"])
            .scoped(200),
        route("DELETE", "/api/v1/workspaces/{fresh}")
            .fresh(Fresh::Workspace)
            .needs(&["DELETE_WORKSPACE"])
            .scoped(204),
        route("GET", "/api/v1/workspaces/acme/events")
            .needs(&["READ_EVENT"])
            .scoped(200),
        // Projects and environments.
        route("POST", "/api/v1/workspaces/acme/projects")
            .body(json!({"name": "Made {n}"}))
            .needs(&["CREATE_PROJECT"])
            .scoped(201),
        // Lists what the caller may read: nothing is an empty list, not a 403.
        route("GET", "/api/v1/workspaces/acme/projects").signed_in_members(),
        route("GET", "/api/v1/projects/shop")
            .needs(&["READ_PROJECT"])
            .hidden(200),
        route("PATCH", "/api/v1/projects/shop")
            .body(json!({"name": "Shop {n}"}))
            .sees(&["READ_PROJECT"])
            .needs(&["UPDATE_PROJECT"])
            .scoped(200),
        route("DELETE", "/api/v1/projects/{fresh}")
            .fresh(Fresh::Project)
            .sees(&["READ_PROJECT"])
            .needs(&["DELETE_PROJECT"])
            .scoped(204),
        route("POST", "/api/v1/projects/shop/environments")
            .body(json!({"name": "made-{n}"}))
            .sees(&["READ_PROJECT"])
            .needs(&["CREATE_ENVIRONMENT"])
            .scoped(201),
        route("GET", "/api/v1/projects/shop/environments")
            .needs(&["READ_PROJECT"])
            .hidden(200),
        route("GET", "/api/v1/projects/shop/environments/dev")
            .needs(&["READ_PROJECT"])
            .hidden(200),
        route("PATCH", "/api/v1/projects/shop/environments/prod")
            .body(json!({"description": "production {n}"}))
            .sees(&["READ_PROJECT"])
            .needs(&["UPDATE_ENVIRONMENT"])
            .scoped(200),
        route("DELETE", "/api/v1/projects/shop/environments/{fresh}")
            .fresh(Fresh::Environment)
            .sees(&["READ_PROJECT"])
            .needs(&["DELETE_ENVIRONMENT"])
            .scoped(204),
        // Roles and members.
        route("POST", "/api/v1/workspaces/acme/roles")
            .body(json!({"name": "Made {n}", "authorities": ["READ_PROJECT"]}))
            .needs(&["CREATE_WORKSPACE_ROLE"])
            .scoped(201),
        route("GET", "/api/v1/workspaces/acme/roles")
            .needs(&["READ_WORKSPACE_ROLE"])
            .scoped(200),
        route("GET", "/api/v1/workspaces/acme/roles/spare")
            .needs(&["READ_WORKSPACE_ROLE"])
            .scoped(200),
        route("PATCH", "/api/v1/workspaces/acme/roles/spare")
            .body(json!({"name": "Spare {n}"}))
            .needs(&["UPDATE_WORKSPACE_ROLE"])
            .scoped(200),
        route("DELETE", "/api/v1/workspaces/acme/roles/{fresh}")
            .fresh(Fresh::Role)
            .needs(&["DELETE_WORKSPACE_ROLE"])
            .scoped(204),
        route("POST", "/api/v1/workspaces/acme/members")
            .fresh(Fresh::User)
            .body(json!({"user": "{fresh}", "roles": []}))
            .needs(&["ADD_USER"])
            .scoped(201),
        route("GET", "/api/v1/workspaces/acme/members")
            .needs(&["READ_USERS"])
            .scoped(200),
        route("GET", "/api/v1/workspaces/acme/members/target")
            .needs(&["READ_USERS"])
            .scoped(200),
        route("PATCH", "/api/v1/workspaces/acme/members/target")
            .body(json!({"roles": []}))
            .needs(&["UPDATE_USER_ROLE"])
            .scoped(200),
        route("DELETE", "/api/v1/workspaces/acme/members/{fresh}")
            .fresh(Fresh::Member)
            .needs(&["REMOVE_USER"])
            .scoped(204),
        // Integrations, their runs and syncs.
        route(
            "POST",
            "/api/v1/workspaces/acme/integrations?validate=false",
        )
        .body(webhook("Made {n}"))
        .needs(&["CREATE_INTEGRATION"])
        .scoped(201),
        route("GET", "/api/v1/workspaces/acme/integrations")
            .needs(&["READ_INTEGRATION"])
            .scoped(200),
        route("GET", "/api/v1/integrations/alerts")
            .needs(&["READ_INTEGRATION"])
            .scoped(200),
        // Narrowed to a project: without READ_PROJECT it is hidden, READ_INTEGRATION or not.
        route("GET", "/api/v1/integrations/shop-sync")
            .sees(&["READ_INTEGRATION"])
            .needs(&["READ_PROJECT"])
            .hidden(200),
        route("PATCH", "/api/v1/integrations/alerts?validate=false")
            .body(json!({"name": "Alerts {n}"}))
            .needs(&["UPDATE_INTEGRATION"])
            .scoped(200),
        route("DELETE", "/api/v1/integrations/{fresh}")
            .fresh(Fresh::Integration)
            .needs(&["DELETE_INTEGRATION"])
            .scoped(204),
        dry_run(
            route("POST", "/api/v1/integrations/validate")
                .body(with_workspace(webhook("Dry {n}")))
                .needs(&["CREATE_INTEGRATION"]),
        ),
        route("POST", "/api/v1/integrations/alerts/test")
            .needs(&["UPDATE_INTEGRATION"])
            .scoped(200),
        route("GET", "/api/v1/integrations/failing/runs")
            .needs(&["READ_INTEGRATION"])
            .scoped(200),
        route("GET", "/api/v1/integrations/failing/runs/{run}")
            .needs(&["READ_INTEGRATION"])
            .scoped(200),
        route("POST", "/api/v1/integrations/failing/runs/{fresh}/retry")
            .fresh(Fresh::FailedRun)
            .needs(&["UPDATE_INTEGRATION"])
            .scoped(202),
        route("POST", "/api/v1/integrations/failing/runs/retry")
            .body(json!({"failedSince": "2000-01-01T00:00:00Z"}))
            .needs(&["UPDATE_INTEGRATION"])
            .scoped(202),
        route("POST", "/api/v1/integrations/shop-sync/sync")
            .sees(&["READ_PROJECT"])
            .needs(&["UPDATE_INTEGRATION"])
            .scoped(202),
        route("POST", "/api/v1/integrations/shop-sync/sync?dryRun=true")
            .sees(&["READ_PROJECT"])
            .needs(&["UPDATE_INTEGRATION"])
            .scoped(200),
    ];
    all.extend(entries(
        "secrets",
        "CREATE_SECRET",
        "READ_SECRET",
        "UPDATE_SECRET",
        "DELETE_SECRET",
    ));
    all.extend(entries(
        "variables",
        "CREATE_VARIABLE",
        "READ_VARIABLE",
        "UPDATE_VARIABLE",
        "DELETE_VARIABLE",
    ));
    all
}

impl Route {
    /// Lists filtered by visibility: every member gets 200, outsiders 404.
    fn signed_in_members(mut self) -> Self {
        self.expect = [401, 401, 401, 404, 200, 200, 200];
        self.needs = vec!["READ_PROJECT"];
        self
    }
}

fn with_workspace(mut body: Value) -> Value {
    body["workspace"] = json!("acme");
    body
}

fn dry_run(mut route: Route) -> Route {
    route.expect = [401, 401, 401, 404, 200, 200, 200];
    route.dry_run = true;
    route
}

/// The callers' tokens and what the fresh objects need.
pub(crate) struct World<'a> {
    api: &'a Api,
    pub(crate) hook: String,
    revoked: String,
    outsider: String,
    /// A member of `acme` per grant: (user name, token).
    members: BTreeMap<Grant, (String, String)>,
    pub(crate) failed_runs: Vec<String>,
    pub(crate) n: usize,
}

pub(crate) fn v1(path: &str) -> String {
    format!("/api/v1{path}")
}

pub(crate) fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap().to_owned()
}

impl World<'_> {
    /// A member of `acme` holding exactly `grant` through a role of its own.
    async fn member(&mut self, grant: &Grant) -> (String, String) {
        if let Some(found) = self.members.get(grant) {
            return found.clone();
        }
        let api = self.api;
        let i = self.members.len();
        let name = format!("member{i}");
        let created = api.post(&v1("/users"), ADMIN, json!({"name": name})).await;
        let token = text(created.expect(201), "token");
        let role = api
            .post(
                &v1("/workspaces/acme/roles"),
                ADMIN,
                json!({"name": format!("Grant {i}"), "authorities": grant.authorities}),
            )
            .await;
        let role = text(role.expect(201), "slug");
        api.post(
            &v1("/workspaces/acme/members"),
            ADMIN,
            json!({"user": name, "roles": [role]}),
        )
        .await
        .expect(201);
        self.members
            .insert(grant.clone(), (name.clone(), token.clone()));
        (name, token)
    }

    /// The `Authorization` header of `caller` for `route`, and the caller's user name.
    pub(crate) async fn authorization(
        &mut self,
        route: &Route,
        caller: Caller,
    ) -> (Option<String>, Option<String>) {
        let bearer = |t: &str| Some(format!("Bearer {t}"));
        match caller {
            Caller::NoToken => (None, None),
            Caller::Malformed => (Some(MALFORMED.to_owned()), None),
            Caller::Revoked => (bearer(&self.revoked), None),
            Caller::Outsider => (bearer(&self.outsider), Some("eve".to_owned())),
            Caller::Admin => (bearer(ADMIN), Some("admin".to_owned())),
            Caller::Without | Caller::With => {
                let grant = route.grant(caller).unwrap();
                let (name, token) = self.member(&grant).await;
                (bearer(&token), Some(name))
            }
        }
    }

    /// Makes the fresh object a cell needs (as the admin); returns what stands for `{fresh}`.
    pub(crate) async fn fresh(
        &mut self,
        route: &Route,
        caller: Caller,
        token: Option<&str>,
    ) -> String {
        let api = self.api;
        let n = self.n;
        match route.fresh {
            Fresh::Nothing => String::new(),
            Fresh::Workspace => {
                let slug = api.workspace(&format!("Doomed {n}")).await;
                // The members of the cell belong to it with the same grant as in `acme`.
                if let Some(grant) = route.grant(caller) {
                    let (name, _) = self.member(&grant).await;
                    let role = api
                        .post(
                            &v1(&format!("/workspaces/{slug}/roles")),
                            ADMIN,
                            json!({"name": "Grant", "authorities": grant.authorities}),
                        )
                        .await;
                    let role = text(role.expect(201), "slug");
                    api.post(
                        &v1(&format!("/workspaces/{slug}/members")),
                        ADMIN,
                        json!({"user": name, "roles": [role]}),
                    )
                    .await
                    .expect(201);
                }
                slug
            }
            Fresh::Project => {
                let made = api
                    .post(
                        &v1("/workspaces/acme/projects"),
                        ADMIN,
                        json!({"name": format!("Doomed {n}")}),
                    )
                    .await;
                text(made.expect(201), "slug")
            }
            Fresh::Environment => {
                let made = api
                    .post(
                        &v1("/projects/shop/environments"),
                        ADMIN,
                        json!({"name": format!("doomed-{n}")}),
                    )
                    .await;
                text(made.expect(201), "slug")
            }
            Fresh::Secret | Fresh::Variable => {
                let kind = if route.fresh == Fresh::Secret {
                    "secrets"
                } else {
                    "variables"
                };
                let key = format!("DOOMED_{n}");
                api.put(
                    &v1(&format!("/projects/shop/{kind}/{key}")),
                    ADMIN,
                    json!({"values": {"dev": "doomed"}}),
                )
                .await
                .expect(201);
                key
            }
            Fresh::Role => {
                let made = api
                    .post(
                        &v1("/workspaces/acme/roles"),
                        ADMIN,
                        json!({"name": format!("Doomed {n}"), "authorities": ["READ_PROJECT"]}),
                    )
                    .await;
                text(made.expect(201), "slug")
            }
            Fresh::User | Fresh::Member => {
                let name = format!("doomed{n}");
                api.post(&v1("/users"), ADMIN, json!({"name": name}))
                    .await
                    .expect(201);
                if route.fresh == Fresh::Member {
                    api.post(
                        &v1("/workspaces/acme/members"),
                        ADMIN,
                        json!({"user": name, "roles": []}),
                    )
                    .await
                    .expect(201);
                }
                name
            }
            Fresh::Integration => {
                let made = api
                    .post(
                        &v1("/workspaces/acme/integrations?validate=false"),
                        ADMIN,
                        json!({"name": format!("Doomed {n}"), "type": "webhook",
                               "notifyOn": ["DECLINED_INVITATION"], "metadata": {"url": self.hook}}),
                    )
                    .await;
                text(made.expect(201), "slug")
            }
            Fresh::OwnToken => match token {
                Some(token) if caller != Caller::Revoked && caller != Caller::Malformed => {
                    let made = api
                        .post(
                            &v1("/me/tokens"),
                            token,
                            json!({"name": format!("doomed{n}")}),
                        )
                        .await;
                    text(made.expect(201), "id")
                }
                _ => "00000000-0000-4000-8000-000000000000".to_owned(),
            },
            Fresh::FailedRun => {
                let index = usize::from(caller == Caller::Admin);
                self.failed_runs[index].clone()
            }
        }
    }
}

/// Fills `{n}`, `{fresh}`, `{run}` and `{hook}` in.
pub(crate) fn fill(template: &str, n: usize, fresh: &str, run: &str, hook: &str) -> String {
    template
        .replace("{n}", &n.to_string())
        .replace("{fresh}", fresh)
        .replace("{run}", run)
        .replace("{hook}", hook)
}

/// What is wrong with `answer` for this cell, if anything.
pub(crate) fn check(
    route: &Route,
    caller: Caller,
    expected: u16,
    answer: &RawAnswer,
) -> Result<(), String> {
    let body = &answer.body;
    let shown = || answer.text.chars().take(300).collect::<String>();
    if answer.status != expected {
        return Err(format!(
            "{} instead of {expected}: {}",
            answer.status,
            shown()
        ));
    }
    match expected {
        401 => {
            let challenge = answer.header("www-authenticate").unwrap_or_default();
            if !challenge.starts_with("Bearer") {
                return Err(format!(
                    "401 without `WWW-Authenticate: Bearer` ({challenge:?})"
                ));
            }
            if body["code"] != "unauthorized" {
                return Err(format!("401 is not an `unauthorized` problem: {}", shown()));
            }
        }
        403 => {
            let names = route
                .names
                .or(route.needs.first().copied())
                .unwrap_or_default();
            let detail = body["detail"].as_str().unwrap_or_default();
            if body["code"] != "forbidden" || !detail.contains(names) {
                return Err(format!("403 does not name `{names}`: {}", shown()));
            }
        }
        404 => {
            // Nothing may tell a hidden object from a missing one: no authority, no "forbidden".
            let detail = body["detail"].as_str().unwrap_or_default();
            if body["code"] != "not_found"
                || detail.contains("authority")
                || detail.contains("forbidden")
            {
                return Err(format!("404 is not a plain `not_found`: {}", shown()));
            }
        }
        _ if route.dry_run => {
            let first = &body["checks"][0];
            let refused =
                first["name"] == "authority" && first["passed"] == false && first["status"] == 403;
            let ok = match caller {
                Caller::Without => body["valid"] == false && refused,
                _ => body["valid"] == true,
            };
            if !ok {
                return Err(format!("unexpected dry run report: {}", shown()));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Seeds the world the matrix runs in.
pub(crate) async fn world<'a>(api: &'a Api, hook: &FakeServer, failing: &FakeServer) -> World<'a> {
    let ws = api.workspace("Acme").await;
    assert_eq!(ws, "acme");
    assert_eq!(api.project(&ws, "Shop").await, "shop");
    for kind in ["secrets", "variables"] {
        let entry = v1(&format!("/projects/shop/{kind}/ENTRY_KEY"));
        api.put(&entry, ADMIN, json!({"values": {"dev": "one"}}))
            .await
            .expect(201);
        api.put(&entry, ADMIN, json!({"values": {"dev": "two"}}))
            .await
            .expect(200);
    }
    api.post(
        &v1("/workspaces/acme/roles"),
        ADMIN,
        json!({"name": "Spare", "authorities": ["READ_PROJECT"]}),
    )
    .await
    .expect(201);
    api.post(&v1("/users"), ADMIN, json!({"name": "target"}))
        .await
        .expect(201);
    api.post(
        &v1("/workspaces/acme/members"),
        ADMIN,
        json!({"user": "target", "roles": []}),
    )
    .await
    .expect(201);

    // Eve administers another workspace and is no member of this one.
    let eve = api.post(&v1("/users"), ADMIN, json!({"name": "eve"})).await;
    let outsider = text(eve.expect(201), "token");
    let other = api.workspace("Other").await;
    api.post(
        &v1(&format!("/workspaces/{other}/members")),
        ADMIN,
        json!({"user": "eve", "roles": ["admin"]}),
    )
    .await
    .expect(201);

    // The admin's own token, revoked: it must stop working at once.
    let made = api
        .post(&v1("/me/tokens"), ADMIN, json!({"name": "revoked"}))
        .await;
    let made = made.expect(201).clone();
    let revoked = text(&made, "token");
    api.get(&v1("/me"), &revoked).await.expect(200);
    api.delete(&v1(&format!("/me/tokens/{}", text(&made, "id"))), ADMIN)
        .await
        .expect(204);

    let create = v1("/workspaces/acme/integrations?validate=false");
    for body in [
        json!({"name": "Alerts", "type": "webhook", "notifyOn": ["SECRET_UPDATED"],
               "metadata": {"url": format!("{}/hook", hook.url())}}),
        json!({"name": "Failing", "type": "webhook", "notifyOn": ["VARIABLE_UPDATED"],
               "metadata": {"url": format!("{}/gone", failing.url())}}),
        json!({"name": "Shop sync", "type": "vercel", "notifyOn": ["SECRET_UPDATED"],
               "actions": ["upsert"], "projectSlug": "shop", "environmentSlugs": ["dev", "prod"],
               "metadata": {"token": vercel::TOKEN, "projectId": vercel::PROJECT_ID},
               "sync": {"targets": {"dev": "development", "prod": "production"}}}),
    ] {
        api.post(&create, ADMIN, body).await.expect(201);
    }
    // Two failed runs for the retry route (the receiver refuses every delivery for good).
    for value in ["three", "four"] {
        api.put(
            &v1("/projects/shop/variables/ENTRY_KEY"),
            ADMIN,
            json!({"values": {"dev": value}}),
        )
        .await
        .expect(200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed_runs = loop {
        let runs = api
            .get(&v1("/integrations/failing/runs?status=failed"), ADMIN)
            .await;
        let ids: Vec<String> = runs.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| text(r, "id"))
            .collect();
        if ids.len() >= 2 {
            break ids;
        }
        assert!(
            Instant::now() < deadline,
            "the failing runs did not fail: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    World {
        api,
        hook: format!("{}/hook", hook.url()),
        revoked,
        outsider,
        members: BTreeMap::new(),
        failed_runs,
        n: 0,
    }
}

/// A request sent twice: naming a real object, then one that does not exist (`ID` in the
/// path and body stands for the name): method, path, body, real name, missing name, status.
type Twin = (&'static str, String, Option<Value>, String, String, u16);

/// References from another workspace to this one's objects, sent by eve (admin of `other`):
/// each answers exactly as the same request naming an object that does not exist (status,
/// code and detail, the name aside). Returns how many requests were sent.
async fn cross_workspace(world: &World<'_>, wrong: &mut Vec<String>) -> usize {
    let api = world.api;
    let eve = world.outsider.as_str();
    let backend = api.backend();
    let made = api
        .post(
            &v1("/workspaces/other/integrations?validate=false"),
            eve,
            json!({"name": "Eve hook", "type": "webhook", "notifyOn": ["DECLINED_INVITATION"],
                   "metadata": {"url": world.hook}}),
        )
        .await;
    let eves = text(made.expect(201), "slug");
    let tokens = api.get(&v1("/me/tokens"), ADMIN).await;
    let admin_token = text(&tokens.expect(200)["items"][0], "id");
    let run = world.failed_runs[0].clone();
    let fake_run = "00000000-0000-4000-8000-000000000000".to_owned();
    let fake_token = "00000000-0000-4000-8000-000000000001".to_owned();
    let cases: Vec<Twin> = vec![
        (
            "GET",
            format!("/integrations/{eves}/runs/ID"),
            None,
            run.clone(),
            fake_run.clone(),
            404,
        ),
        (
            "POST",
            format!("/integrations/{eves}/runs/ID/retry"),
            None,
            run.clone(),
            fake_run,
            404,
        ),
        (
            "GET",
            "/workspaces/other/events?project=ID".into(),
            None,
            "shop".into(),
            "nope".into(),
            404,
        ),
        (
            "GET",
            "/workspaces/other/integrations?project=ID".into(),
            None,
            "shop".into(),
            "nope".into(),
            404,
        ),
        (
            "POST",
            "/workspaces/other/integrations?validate=false".into(),
            Some(
                json!({"name": "Spy", "type": "webhook", "notifyOn": ["SECRET_UPDATED"],
                        "projectSlug": "ID", "metadata": {"url": world.hook}}),
            ),
            "shop".into(),
            "nope".into(),
            404,
        ),
        (
            "POST",
            "/workspaces/other/roles".into(),
            Some(json!({"name": "Spy", "authorities": ["READ_SECRET"], "projects": ["ID"]})),
            "shop".into(),
            "nope".into(),
            400,
        ),
        (
            "POST",
            "/workspaces/other/members".into(),
            Some(json!({"user": "target", "roles": ["ID"]})),
            "spare".into(),
            "nope".into(),
            400,
        ),
        (
            "GET",
            "/workspaces/other/members/ID".into(),
            None,
            "target".into(),
            "nobody".into(),
            404,
        ),
        (
            "DELETE",
            "/me/tokens/ID".into(),
            None,
            admin_token,
            fake_token,
            404,
        ),
        (
            "POST",
            "/integrations/validate".into(),
            Some(json!({"slug": "ID", "patch": {}})),
            "alerts".into(),
            "nope".into(),
            404,
        ),
        (
            "POST",
            "/integrations/validate".into(),
            Some(
                json!({"workspace": "other", "name": "Spy", "type": "webhook",
                        "notifyOn": ["SECRET_UPDATED"], "projectSlug": "ID",
                        "metadata": {"url": world.hook}}),
            ),
            "shop".into(),
            "nope".into(),
            200,
        ),
    ];
    let mut sent = 0;
    for (method, path, body, real, fake, status) in cases {
        let mut answers = Vec::new();
        for name in [&real, &fake] {
            let path = v1(&path.replace("ID", name));
            let body = body.as_ref().map(|b| {
                b.to_string()
                    .replace("\"ID\"", &format!("\"{name}\""))
                    .into_bytes()
            });
            let content_type = body.as_ref().map(|_| "application/json");
            let answer = api
                .send(
                    method,
                    &path,
                    Some(&format!("Bearer {eve}")),
                    content_type,
                    body,
                )
                .await;
            sent += 1;
            // The name itself may be quoted back; nothing else may differ.
            answers.push((answer.status, answer.text.replace(name.as_str(), "NAME")));
        }
        if answers[0].0 != status || answers[0] != answers[1] {
            wrong.push(format!(
                "{backend}: eve's {method} {path} with `{real}`: {:?}; with `{fake}` (which does not exist): {:?}; expected {status} for both, alike",
                answers[0], answers[1]
            ));
        }
    }
    sent
}

#[tokio::test]
async fn every_route_answers_each_caller_as_the_matrix_says() {
    let mut wrong = Vec::new();
    for db in TestDb::all().await {
        let hook = FakeServer::start(|_| FakeResponse::json(200, json!({"ok": true})));
        let failing = FakeServer::start(|_| FakeResponse::json(400, json!({"error": "gone"})));
        let fake_vercel = FakeVercel::start();
        let overrides = format!("{}={}", vercel::ORIGIN, fake_vercel.url());
        let api = Api::with_env(db, &[("KEYWIRE_TEST_ORIGIN_OVERRIDES", overrides.as_str())]);
        let backend = api.backend();
        let started = Instant::now();
        let mut world = world(&api, &hook, &failing).await;
        let table = routes();
        let mut cells = 0;
        for route in &table {
            for (caller, expected) in CALLERS.iter().zip(route.expect) {
                world.n += 1;
                let (authorization, _) = world.authorization(route, *caller).await;
                let token = authorization
                    .as_deref()
                    .and_then(|a| a.strip_prefix("Bearer "));
                let fresh = world.fresh(route, *caller, token).await;
                let run = world.failed_runs[1].clone();
                let path = fill(&route.path, world.n, &fresh, &run, &world.hook);
                let body = route
                    .body
                    .as_ref()
                    .map(|b| fill(&b.to_string(), world.n, &fresh, &run, &world.hook).into_bytes());
                let content_type = body.as_ref().map(|_| "application/json");
                let answer = api
                    .send(
                        route.method,
                        &path,
                        authorization.as_deref(),
                        content_type,
                        body,
                    )
                    .await;
                cells += 1;
                if let Err(why) = check(route, *caller, expected, &answer) {
                    wrong.push(format!("{backend}: {} as {caller:?}: {why}", route.label()));
                }
            }
        }

        let matrix = cells;
        let cross = cross_workspace(&world, &mut wrong).await;
        cells += cross;

        // Schemes and header values that are not a bearer token.
        for (header, status) in [
            ("Basic YWRtaW46YWRtaW4=", 401),
            ("Bearer", 401),
            ("Bearer    ", 401),
            ("Token kw_domain_admin_token_0123456789abcdef", 401),
            ("Bearer kw_domain_admin_token_0123456789abcdef\u{ff}", 401),
            ("bearer kw_domain_admin_token_0123456789abcdef", 200),
        ] {
            let answer = api
                .send("GET", "/api/v1/me", Some(header), None, None)
                .await;
            cells += 1;
            let challenged = answer
                .header("www-authenticate")
                .is_some_and(|c| c.starts_with("Bearer"));
            if answer.status != status || (status == 401 && !challenged) {
                wrong.push(format!(
                    "{backend}: GET /api/v1/me with `Authorization: {header}`: {} (expected {status}, WWW-Authenticate {:?})",
                    answer.status,
                    answer.header("www-authenticate")
                ));
            }
        }
        eprintln!(
            "{backend}: {} routes x {} callers = {matrix} cells, {cross} cross-workspace requests, {} header checks: {cells} in {:?}",
            table.len(),
            CALLERS.len(),
            cells - matrix - cross,
            started.elapsed()
        );
    }
    assert!(
        wrong.is_empty(),
        "{} cells answered wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
