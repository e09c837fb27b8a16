//! Profiles: a server URL and an API token under a name, in `config.json` of the user's config
//! directory (`$KEYWIRE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/keywire`, else
//! `~/.config/keywire`; `%APPDATA%\keywire` on Windows), written with mode 0600 in a 0700
//! directory.
//!
//! Which server and token a command uses: `--url`/`KEYWIRE_URL` over the profile's URL;
//! `KEYWIRE_TOKEN` over the profile's token. The profile is `--profile`/`KEYWIRE_PROFILE`, else
//! the current one, else `default`. A stored token is only sent to the URL it was stored with.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::Global;
use crate::error::Error;

/// The name used when none is given and none is current.
pub(crate) const DEFAULT: &str = "default";

/// One stored server and token.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Profile {
    pub(crate) url: String,
    pub(crate) token: String,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("url", &self.url)
            .field("token", &"***")
            .finish()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// The profiles file, loaded.
#[derive(Debug)]
pub(crate) struct Profiles {
    path: PathBuf,
    file: File,
}

/// The user's keywire config directory.
pub(crate) fn config_dir() -> Result<PathBuf, Error> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("KEYWIRE_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if cfg!(windows)
        && let Some(dir) = var("APPDATA")
    {
        return Ok(PathBuf::from(dir).join("keywire"));
    }
    if let Some(dir) = var("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(dir).join("keywire"));
    }
    if let Some(home) = var("HOME").or_else(|| var("USERPROFILE")) {
        return Ok(PathBuf::from(home).join(".config").join("keywire"));
    }
    Err(Error::usage(
        "cannot find a config directory: set KEYWIRE_CONFIG_DIR or HOME",
    ))
}

/// `url` without surrounding spaces and trailing slashes, checked to be http(s).
pub(crate) fn normalize_url(url: &str) -> Result<String, Error> {
    let url = url.trim().trim_end_matches('/');
    let parsed =
        reqwest::Url::parse(url).map_err(|e| Error::usage(format!("`{url}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::usage(format!(
            "`{url}` is not an http(s) URL, e.g. http://127.0.0.1:8080"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::usage(
            "put the token in the profile (keywire login), not in the URL",
        ));
    }
    Ok(url.to_owned())
}

impl Profiles {
    /// Loads the file (none yet: no profiles).
    pub(crate) fn load() -> Result<Profiles, Error> {
        let path = config_dir()?.join("config.json");
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => {
                fix_permissions(&path);
                serde_json::from_str(&text)
                    .map_err(|e| Error::failed(format!("cannot read {}: {e}", path.display())))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => {
                return Err(Error::failed(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(Profiles { path, file })
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The name a command uses: the one asked for, else the current one, else `default`.
    pub(crate) fn name(&self, asked: Option<&str>) -> String {
        asked
            .map(str::to_owned)
            .or_else(|| self.file.current.clone())
            .unwrap_or_else(|| DEFAULT.to_owned())
    }

    /// The current profile's name, if one was chosen.
    pub(crate) fn current(&self) -> Option<&str> {
        self.file.current.as_deref()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Profile> {
        self.file.profiles.get(name)
    }

    /// Every profile, by name.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&String, &Profile)> {
        self.file.profiles.iter()
    }

    /// Stores a profile and makes it the current one.
    pub(crate) fn put(&mut self, name: &str, profile: Profile) {
        self.file.profiles.insert(name.to_owned(), profile);
        self.file.current = Some(name.to_owned());
    }

    /// Makes a stored profile the current one.
    pub(crate) fn select(&mut self, name: &str) -> Result<(), Error> {
        if !self.file.profiles.contains_key(name) {
            return Err(Error::new(
                crate::exit::NOT_FOUND,
                format!("no profile `{name}` (see keywire profile list)"),
            ));
        }
        self.file.current = Some(name.to_owned());
        Ok(())
    }

    /// Removes a profile; whether it existed.
    pub(crate) fn remove(&mut self, name: &str) -> bool {
        let existed = self.file.profiles.remove(name).is_some();
        if self.file.current.as_deref() == Some(name) {
            self.file.current = None;
        }
        existed
    }

    /// Writes the file: directory 0700, file 0600, replaced atomically.
    pub(crate) fn save(&self) -> Result<(), Error> {
        let cannot =
            |e: std::io::Error| Error::failed(format!("cannot write {}: {e}", self.path.display()));
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(cannot)?;
        let text = serde_json::to_string_pretty(&self.file)
            .map_err(|e| Error::failed(format!("cannot encode the profiles: {e}")))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        {
            use std::io::Write;
            let mut f = options.open(&tmp).map_err(cannot)?;
            // An older tmp file may have had another mode: set it before writing the token.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(cannot)?;
            }
            f.write_all(text.as_bytes()).map_err(cannot)?;
            f.write_all(b"\n").map_err(cannot)?;
            f.sync_all().map_err(cannot)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(cannot)
    }
}

/// A profiles file others could read is made owner-only again (with a warning).
fn fix_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "warning: {} could be read by other users; making it owner-only (0600)",
                path.display()
            );
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Where a command sends its requests, and with which token.
pub(crate) struct Connection {
    pub(crate) url: String,
    pub(crate) token: String,
    /// The profile it came from, if any.
    pub(crate) profile: Option<String>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// The server and token for a command (see the module doc).
pub(crate) fn resolve(global: &Global) -> Result<Connection, Error> {
    let profiles = Profiles::load()?;
    let name = profiles.name(global.profile.as_deref());
    let stored = profiles.get(&name);
    let env_token = std::env::var("KEYWIRE_TOKEN")
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    if global.profile.is_some() && stored.is_none() && env_token.is_none() {
        return Err(Error::new(
            crate::exit::NOT_FOUND,
            format!(
                "no profile `{name}` (see keywire profile list, or keywire login --profile {name})"
            ),
        ));
    }
    let url = match (&global.url, stored) {
        (Some(url), _) => normalize_url(url)?,
        (None, Some(profile)) => profile.url.clone(),
        (None, None) => {
            return Err(Error::forbidden(
                "not logged in: run `keywire login --url <server>`, or set KEYWIRE_URL and KEYWIRE_TOKEN",
            ));
        }
    };
    let token = match (env_token, stored) {
        (Some(token), _) => token,
        (None, Some(profile)) if profile.url == url => profile.token.clone(),
        (None, Some(profile)) => {
            return Err(Error::forbidden(format!(
                "profile `{name}` holds a token for {}, not for {url}: set KEYWIRE_TOKEN, or log in to {url}",
                profile.url
            )));
        }
        (None, None) => {
            return Err(Error::forbidden(format!(
                "no token for {url}: run `keywire login --url {url}`, or set KEYWIRE_TOKEN"
            )));
        }
    };
    Ok(Connection {
        url,
        token,
        profile: stored.map(|_| name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized_and_checked() {
        assert_eq!(
            normalize_url(" http://127.0.0.1:8080/ ").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_url("https://kw.example.com/base/").unwrap(),
            "https://kw.example.com/base"
        );
        assert!(normalize_url("ftp://x").is_err());
        assert!(normalize_url("127.0.0.1:8080").is_err());
        assert!(normalize_url("https://user:pw@kw.example.com").is_err());
    }

    #[test]
    fn a_profile_never_shows_its_token() {
        let p = Profile {
            url: "http://x".into(),
            token: "kw_secret_value".into(),
        };
        assert!(!format!("{p:?}").contains("kw_secret_value"));
    }
}
