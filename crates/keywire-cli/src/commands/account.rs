//! `login`, `logout`, `whoami`, `profile`.

use serde_json::json;

use super::{Ctx, read_hidden, s};
use crate::cli::{LoginArgs, LogoutArgs, ProfileAction, ProfileCmd};
use crate::client::Api;
use crate::error::Error;
use crate::output::{Out, Table};
use crate::profile::{Connection, DEFAULT, Profile, Profiles, normalize_url, resolve};

/// `keywire login`: checks the token with `GET /me`, then stores the profile (and makes it
/// the current one).
pub(crate) async fn login(args: LoginArgs) -> Result<(), Error> {
    let out = Out::new(args.global.output);
    let mut profiles = Profiles::load()?;
    let name = args
        .global
        .profile
        .clone()
        .unwrap_or_else(|| DEFAULT.to_owned());
    let url = match (&args.global.url, profiles.get(&name)) {
        (Some(url), _) => normalize_url(url)?,
        (None, Some(stored)) => stored.url.clone(),
        (None, None) => {
            return Err(Error::usage(
                "give the server: keywire login --url http://127.0.0.1:8080",
            ));
        }
    };
    let token = match args.token {
        Some(token) => token,
        None => read_hidden(&format!("API token for {url}: "))?,
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(Error::usage(
            "no token: pass it on standard input (or --token)",
        ));
    }
    let api = Api::new(Connection {
        url: url.clone(),
        token: token.clone(),
        profile: Some(name.clone()),
    })?;
    let me = api.get(&["me"], &[]).await.map_err(|mut e| {
        if e.code == crate::exit::FORBIDDEN {
            e.message = format!("the server refused the token: {}", e.message);
        }
        e
    })?;
    profiles.put(
        &name,
        Profile {
            url: url.clone(),
            token,
        },
    );
    profiles.save()?;
    if out.json() {
        out.value(&json!({"profile": name, "url": url, "user": me}));
    } else {
        out.line(&format!(
            "Logged in to {url} as {}; profile `{name}` saved in {}.",
            s(&me["name"]),
            profiles.path().display()
        ));
    }
    Ok(())
}

/// `keywire logout`: removes the profile; `--revoke` first revokes its token on the server.
pub(crate) async fn logout(args: LogoutArgs) -> Result<(), Error> {
    let out = Out::new(args.global.output);
    let mut profiles = Profiles::load()?;
    let name = profiles.name(args.global.profile.as_deref());
    if profiles.get(&name).is_none() {
        return Err(Error::new(
            crate::exit::NOT_FOUND,
            format!("no profile `{name}`"),
        ));
    }
    if args.revoke {
        let api = Api::new(resolve(&args.global)?)?;
        let me = api.get(&["me"], &[]).await?;
        let id = s(&me["token"]["id"]);
        api.delete(&["me", "tokens", &id], &[]).await?;
    }
    profiles.remove(&name);
    profiles.save()?;
    if out.json() {
        out.value(&json!({"loggedOut": name, "revoked": args.revoke}));
    } else if args.revoke {
        out.line(&format!("Revoked the token and removed profile `{name}`."));
    } else {
        out.line(&format!(
            "Removed profile `{name}` (the token still works; --revoke revokes it)."
        ));
    }
    Ok(())
}

/// `keywire whoami`.
pub(crate) async fn whoami(ctx: &Ctx) -> Result<(), Error> {
    let me = ctx.api.get(&["me"], &[]).await?;
    if ctx.out.json() {
        ctx.out.value(&me);
        return Ok(());
    }
    let token = &me["token"];
    let mut pairs = vec![
        ("User", s(&me["name"])),
        (
            "Admin",
            if me["isAdmin"] == true { "yes" } else { "no" }.to_owned(),
        ),
        (
            "Token",
            format!("{} ({}…)", s(&token["name"]), s(&token["prefix"])),
        ),
    ];
    if let Some(expires) = token["expiresAt"].as_str() {
        pairs.push(("Expires", crate::time::show(expires)));
    }
    if let Some(limit) = token["authorities"].as_array() {
        pairs.push((
            "Limited to",
            limit.iter().map(s).collect::<Vec<_>>().join(", "),
        ));
    }
    pairs.push(("Server", ctx.api.url.clone()));
    pairs.push((
        "Profile",
        ctx.api
            .profile
            .clone()
            .unwrap_or_else(|| "(none: KEYWIRE_URL and KEYWIRE_TOKEN)".into()),
    ));
    ctx.out.fields(&pairs);
    Ok(())
}

/// `keywire profile list|use|delete`.
pub(crate) fn profile(args: ProfileCmd) -> Result<(), Error> {
    let out = Out::new(args.global.output);
    let mut profiles = Profiles::load()?;
    match args.action {
        ProfileAction::List => {
            let current = profiles.current().map(str::to_owned);
            if out.json() {
                let list: Vec<_> = profiles
                    .all()
                    .map(|(name, p)| {
                        json!({"name": name, "url": p.url, "current": current.as_deref() == Some(name)})
                    })
                    .collect();
                out.value(&json!(list));
            } else {
                let mut table = Table::new(&["", "PROFILE", "URL"]);
                for (name, p) in profiles.all() {
                    let mark = if current.as_deref() == Some(name) {
                        "*"
                    } else {
                        ""
                    };
                    table.row(vec![mark.into(), name.clone(), p.url.clone()]);
                }
                out.table(&table, "No profiles yet: keywire login --url <server>");
            }
        }
        ProfileAction::Use { name } => {
            profiles.select(&name)?;
            profiles.save()?;
            if out.json() {
                out.value(&json!({"current": name}));
            } else {
                out.line(&format!("Now using profile `{name}`."));
            }
        }
        ProfileAction::Delete { name } => {
            if !profiles.remove(&name) {
                return Err(Error::new(
                    crate::exit::NOT_FOUND,
                    format!("no profile `{name}`"),
                ));
            }
            profiles.save()?;
            if out.json() {
                out.value(&json!({"deleted": "profile", "slug": name}));
            } else {
                out.line(&format!("Removed profile `{name}`."));
            }
        }
    }
    Ok(())
}
