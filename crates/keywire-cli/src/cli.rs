//! The client subcommands, as clap parses them. Doc comments are the `--help` text.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, Subcommand, ValueEnum};

/// The client subcommands of `keywire`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a server URL and API token as a profile (the token is read from stdin unless
    /// `--token` is given).
    Login(LoginArgs),
    /// Forget a profile's token (`--revoke` also revokes it on the server).
    Logout(LogoutArgs),
    /// Show who the current token belongs to, and which server and profile are used.
    Whoami(WhoamiArgs),
    /// List, switch or remove stored profiles.
    Profile(ProfileCmd),
    /// Workspaces: list, create, get, update, delete.
    Workspace(WorkspaceCmd),
    /// Projects of a workspace: list, create, get, update, delete.
    Project(ProjectCmd),
    /// Environments of a project: list, create, get, update, delete.
    Environment(EnvironmentCmd),
    /// Secrets of a project: list, set, get, delete, history.
    Secret(EntryCmd),
    /// Variables of a project: list, set, get, delete, history.
    Variable(EntryCmd),
    /// The event log of a workspace.
    Event(EventCmd),
    /// Integrations: types, create, list, get, update, delete, validate, test, sync, runs.
    Integration(IntegrationCmd),
    /// Run a command with an environment's secrets and variables in its environment.
    Run(RunArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human tables and lines.
    Table,
    /// JSON: the API's objects; lists as one array.
    Json,
}

const GLOBAL: &str = "Global options";

/// Options of every command that talks to a server.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The profile to use (default: the current one, see `keywire profile list`).
    #[arg(long, global = true, env = "KEYWIRE_PROFILE", value_name = "NAME", help_heading = GLOBAL)]
    pub(crate) profile: Option<String>,
    /// The server, e.g. `http://127.0.0.1:8080`; overrides the profile's. A stored token is
    /// only sent to the URL it was stored for; otherwise set `KEYWIRE_TOKEN`.
    #[arg(long, global = true, env = "KEYWIRE_URL", value_name = "URL", help_heading = GLOBAL)]
    pub(crate) url: Option<String>,
    /// Output format: `table` for people, `json` for scripts.
    #[arg(
        short,
        long,
        global = true,
        env = "KEYWIRE_OUTPUT",
        value_enum,
        default_value = "table",
        help_heading = GLOBAL
    )]
    pub(crate) output: Format,
}

/// `keywire login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub(crate) global: Global,
    /// The API token. Prefer standard input (a hidden prompt on a terminal): a token on the
    /// command line ends up in the shell history and the process list.
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
}

/// `keywire logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub(crate) global: Global,
    /// Also revoke the token on the server, so it stops working everywhere.
    #[arg(long)]
    pub(crate) revoke: bool,
}

/// `keywire whoami`.
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub(crate) global: Global,
}

/// `keywire profile`.
#[derive(Debug, Args)]
pub struct ProfileCmd {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) action: ProfileAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProfileAction {
    /// List the stored profiles (never their tokens); `*` marks the current one.
    List,
    /// Make a profile the current one.
    Use {
        /// The profile's name.
        name: String,
    },
    /// Remove a stored profile.
    Delete {
        /// The profile's name.
        name: String,
    },
}

/// `--limit` of list commands.
#[derive(Debug, Clone, Args)]
pub(crate) struct Limit {
    /// Show at most this many items (default: all, following pages).
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
}

/// Confirmation of a destructive command.
#[derive(Debug, Clone, Args)]
pub(crate) struct Confirm {
    /// Do not ask for confirmation (required when standard input is not a terminal).
    #[arg(short = 'y', long)]
    pub(crate) yes: bool,
}

/// `keywire workspace`.
#[derive(Debug, Args)]
pub struct WorkspaceCmd {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) action: WorkspaceAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkspaceAction {
    /// List the workspaces you can see.
    List(Limit),
    /// Create a workspace (its slug is derived from the name).
    Create {
        /// The name.
        name: String,
    },
    /// Show a workspace.
    Get {
        /// The workspace's slug.
        workspace: String,
    },
    /// Rename a workspace.
    Update {
        /// The workspace's slug.
        workspace: String,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Delete a workspace and everything in it.
    Delete {
        /// The workspace's slug.
        workspace: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

/// `--workspace`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InWorkspace {
    /// The workspace's slug.
    #[arg(short, long, env = "KEYWIRE_WORKSPACE", value_name = "SLUG")]
    pub(crate) workspace: String,
}

/// `--project`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InProject {
    /// The project's slug.
    #[arg(short, long, env = "KEYWIRE_PROJECT", value_name = "SLUG")]
    pub(crate) project: String,
}

/// `keywire project`.
#[derive(Debug, Args)]
pub struct ProjectCmd {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) action: ProjectAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectAction {
    /// List the projects of a workspace.
    List {
        #[command(flatten)]
        workspace: InWorkspace,
        #[command(flatten)]
        limit: Limit,
    },
    /// Create a project, optionally with environments.
    Create {
        /// The name.
        name: String,
        #[command(flatten)]
        workspace: InWorkspace,
        /// An environment to create with it (repeat, or separate with commas).
        #[arg(
            short,
            long = "environment",
            value_name = "NAME",
            value_delimiter = ','
        )]
        environments: Vec<String>,
    },
    /// Show a project and its environments.
    Get {
        /// The project's slug.
        project: String,
    },
    /// Rename a project.
    Update {
        /// The project's slug.
        project: String,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Delete a project with its environments, secrets and variables.
    Delete {
        /// The project's slug.
        project: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

/// `keywire environment`.
#[derive(Debug, Args)]
pub struct EnvironmentCmd {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) action: EnvironmentAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EnvironmentAction {
    /// List the environments of a project.
    List {
        #[command(flatten)]
        project: InProject,
    },
    /// Create an environment.
    Create {
        /// The name.
        name: String,
        #[command(flatten)]
        project: InProject,
    },
    /// Show an environment.
    Get {
        /// The environment's slug.
        environment: String,
        #[command(flatten)]
        project: InProject,
    },
    /// Rename an environment.
    Update {
        /// The environment's slug.
        environment: String,
        #[command(flatten)]
        project: InProject,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Delete an environment and its values.
    Delete {
        /// The environment's slug.
        environment: String,
        #[command(flatten)]
        project: InProject,
        #[command(flatten)]
        confirm: Confirm,
    },
}

/// `keywire secret` and `keywire variable`.
#[derive(Debug, Args)]
pub struct EntryCmd {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) action: EntryAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EntryAction {
    /// List the keys with their versions per environment (values with `--reveal`).
    List {
        #[command(flatten)]
        project: InProject,
        /// Only this environment.
        #[arg(short, long = "env", value_name = "ENV")]
        environment: Option<String>,
        /// Show the values (secrets only; variables always show them).
        #[arg(long)]
        reveal: bool,
        #[command(flatten)]
        limit: Limit,
    },
    /// Set values: `KEY --env dev=VALUE --env prod=VALUE`, `KEY --env dev` (the value from
    /// standard input, or a hidden prompt), or `--dotenv FILE --env dev` (every key of a
    /// dotenv file, in each named environment).
    Set {
        /// The key (`^[A-Za-z_][A-Za-z0-9_]*$`); leave out with `--dotenv`.
        key: Option<String>,
        #[command(flatten)]
        project: InProject,
        /// `ENV=VALUE`, or `ENV` alone to read the value from standard input (repeatable).
        #[arg(short, long = "env", value_name = "ENV[=VALUE]", required = true)]
        env: Vec<String>,
        /// Read `KEY=VALUE` lines from this dotenv file (`-`: standard input).
        #[arg(long, value_name = "FILE", conflicts_with = "key")]
        dotenv: Option<PathBuf>,
        /// A note about the key (empty clears it).
        #[arg(long)]
        note: Option<String>,
    },
    /// Show a key's versions per environment; `--reveal` shows the values, and with one
    /// `--env` prints the bare value.
    Get {
        /// The key.
        key: String,
        #[command(flatten)]
        project: InProject,
        /// Only this environment.
        #[arg(short, long = "env", value_name = "ENV")]
        environment: Option<String>,
        /// Show the values (secrets only; variables always show them).
        #[arg(long)]
        reveal: bool,
    },
    /// Delete a key, or only its value in one environment (`--env`).
    Delete {
        /// The key.
        key: String,
        #[command(flatten)]
        project: InProject,
        /// Only this environment's value (and its versions).
        #[arg(short, long = "env", value_name = "ENV")]
        environment: Option<String>,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// The version history of a key in one environment, newest first.
    History {
        /// The key.
        key: String,
        #[command(flatten)]
        project: InProject,
        /// The environment.
        #[arg(short, long = "env", value_name = "ENV")]
        environment: String,
        /// Show the values (secrets only; variables always show them).
        #[arg(long)]
        reveal: bool,
        #[command(flatten)]
        limit: Limit,
    },
}

/// `keywire event`.
#[derive(Debug, Args)]
pub struct EventCmd {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) action: EventAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventAction {
    /// The newest events of a workspace first, filtered.
    List {
        #[command(flatten)]
        workspace: InWorkspace,
        /// Only these types (`SECRET_UPDATED`; repeat or separate with commas).
        #[arg(short = 't', long = "type", value_name = "TYPE", value_delimiter = ',')]
        types: Vec<String>,
        /// Only this source (`SECRET`, `PROJECT`...).
        #[arg(long)]
        source: Option<String>,
        /// Only events of this project (slug).
        #[arg(short, long)]
        project: Option<String>,
        /// Only events at or after this time: RFC 3339, a date, or an age such as `30m`,
        /// `2h`, `7d`.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Show at most this many events.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
    },
}

/// `keywire integration`.
#[derive(Debug, Args)]
pub struct IntegrationCmd {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) action: IntegrationAction,
}

/// What an integration does: the fields `create`, `update` and `validate` share.
#[derive(Debug, Clone, Args)]
pub(crate) struct Spec {
    /// The integration's name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Event types to deliver (repeat or separate with commas).
    #[arg(long = "notify-on", value_name = "EVENT", value_delimiter = ',')]
    pub(crate) notify_on: Vec<String>,
    /// Actions the integration may take (repeat or separate with commas).
    #[arg(long = "action", value_name = "ACTION", value_delimiter = ',')]
    pub(crate) actions: Vec<String>,
    /// Narrow to these environments of the project (repeat or separate with commas).
    #[arg(short, long = "environment", value_name = "ENV", value_delimiter = ',')]
    pub(crate) environments: Vec<String>,
    /// A metadata field, `FIELD=VALUE`; `FIELD` alone reads the value from standard input
    /// (hidden on a terminal). Values of non-string fields are parsed as JSON.
    #[arg(short, long = "metadata", value_name = "FIELD[=VALUE]")]
    pub(crate) metadata: Vec<String>,
    /// Metadata as a JSON object from this file, or YAML when it ends in `.yaml`/`.yml` (`-`:
    /// JSON from standard input); `--metadata` wins.
    #[arg(long, value_name = "FILE")]
    pub(crate) metadata_file: Option<PathBuf>,
    /// Skip the type's live check of the metadata.
    #[arg(long)]
    pub(crate) no_validate: bool,
    /// Infrastructure types: the key written at the target for each entry; `{{key}}` is the
    /// entry's key, e.g. `APP_{{key}}`.
    #[arg(long, value_name = "TEMPLATE")]
    pub(crate) key_template: Option<String>,
    /// Infrastructure types: a key at the target that keywire did not write is left alone
    /// (`skip`) or taken over (`adopt`).
    #[arg(long, value_parser = ["skip", "adopt"])]
    pub(crate) on_conflict: Option<String>,
    /// Infrastructure types: the provider's target of an environment, `ENV=TARGET` (repeat;
    /// replaces every target), e.g. `prod=production` on Vercel.
    #[arg(long = "target", value_name = "ENV=TARGET")]
    pub(crate) targets: Vec<String>,
}

/// The integration a new one goes into.
#[derive(Debug, Clone, Args)]
pub(crate) struct NewIntegration {
    /// The workspace's slug.
    #[arg(short, long, env = "KEYWIRE_WORKSPACE", value_name = "SLUG")]
    pub(crate) workspace: Option<String>,
    /// The integration type (see `keywire integration types`).
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    pub(crate) kind: Option<String>,
    /// Narrow to this project (slug).
    #[arg(short, long, value_name = "SLUG")]
    pub(crate) project: Option<String>,
    /// Create it disabled.
    #[arg(long)]
    pub(crate) disabled: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum IntegrationAction {
    /// The integration types (without TYPE), or one type's metadata fields, which of them are
    /// credentials, and an example.
    Types {
        /// A type id, e.g. `webhook`.
        #[arg(value_name = "TYPE")]
        kind: Option<String>,
    },
    /// Create an integration; prompts (hidden) for missing credential fields on a terminal.
    Create {
        #[command(flatten)]
        new: NewIntegration,
        #[command(flatten)]
        spec: Spec,
    },
    /// List the integrations of a workspace.
    List {
        #[command(flatten)]
        workspace: InWorkspace,
        /// Only this type.
        #[arg(short = 't', long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Only those narrowed to this project (slug).
        #[arg(short, long)]
        project: Option<String>,
        /// Only enabled (`true`) or disabled (`false`) ones.
        #[arg(long, value_name = "BOOL")]
        enabled: Option<bool>,
        /// Only those whose name contains this.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        #[command(flatten)]
        limit: Limit,
    },
    /// Show an integration (credentials only as set / not set).
    Get {
        /// The integration's slug.
        integration: String,
    },
    /// Change an integration; metadata fields left out (credentials too) are kept.
    Update {
        /// The integration's slug.
        integration: String,
        #[command(flatten)]
        spec: Spec,
        /// Enable it.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Disable it.
        #[arg(long)]
        disable: bool,
    },
    /// Delete an integration; `--cleanup` first removes what it wrote at the target.
    Delete {
        /// The integration's slug.
        integration: String,
        /// Remove what the integration wrote at the target first; if that fails, keep it.
        #[arg(long)]
        cleanup: bool,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Dry-run: check an existing integration (INTEGRATION), or a new one given like
    /// `create`, with the live check; saves nothing. Exit code 1 when a check fails.
    Validate {
        /// An existing integration's slug; leave out to check a new one.
        integration: Option<String>,
        #[command(flatten)]
        new: NewIntegration,
        #[command(flatten)]
        spec: Spec,
    },
    /// Send a test event through the real renderer and show what the provider answered.
    /// Exit code 1 when it was not delivered.
    Test {
        /// The integration's slug.
        integration: String,
    },
    /// Make the target match keywire now (infrastructure types); shows progress until the
    /// run ends. `--dry-run` prints the plan and changes nothing.
    Sync {
        /// The integration's slug.
        integration: String,
        /// Print what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Start the run and return without waiting for it.
        #[arg(long, conflicts_with = "dry_run")]
        no_wait: bool,
    },
    /// Delivery runs of an integration, newest first; `show` and `retry` one.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Runs {
        #[command(flatten)]
        list: RunsList,
        #[command(subcommand)]
        action: Option<RunsAction>,
    },
}

/// `keywire integration runs <integration>`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunsList {
    /// The integration's slug.
    #[arg(required = true)]
    pub(crate) integration: Option<String>,
    /// Only runs in this status: `pending`, `running`, `succeeded` or `failed`.
    #[arg(long, value_parser = ["pending", "running", "succeeded", "failed"])]
    pub(crate) status: Option<String>,
    #[command(flatten)]
    pub(crate) limit: Limit,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RunsAction {
    /// List the runs (the same as `runs <integration>`).
    List {
        #[command(flatten)]
        list: RunsList,
    },
    /// One run with its attempts and event.
    Show {
        /// The integration's slug.
        integration: String,
        /// The run's id.
        run: String,
    },
    /// Queue a failed run again, or every run that failed since a time.
    Retry {
        /// The integration's slug.
        integration: String,
        /// The run's id.
        #[arg(
            required_unless_present = "failed_since",
            conflicts_with = "failed_since"
        )]
        run: Option<String>,
        /// Retry every run that failed at or after this time: RFC 3339, a date, or an age
        /// such as `30m`, `2h`, `7d`.
        #[arg(long, value_name = "TIME")]
        failed_since: Option<String>,
    },
}

/// `keywire run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub(crate) global: Global,
    /// The project's slug.
    #[arg(short, long, env = "KEYWIRE_PROJECT", value_name = "SLUG")]
    pub(crate) project: String,
    /// The environment whose values the command gets.
    #[arg(short, long, env = "KEYWIRE_ENVIRONMENT", value_name = "ENV")]
    pub(crate) environment: String,
    /// Only secrets, no variables.
    #[arg(long, conflicts_with = "only_variables")]
    pub(crate) only_secrets: bool,
    /// Only variables, no secrets.
    #[arg(long)]
    pub(crate) only_variables: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND", action = ArgAction::Append)]
    pub(crate) command: Vec<OsString>,
}

/// `keywire completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub(crate) shell: clap_complete::Shell,
}
