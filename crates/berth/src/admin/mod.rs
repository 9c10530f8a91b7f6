//! `berth admin`: management from the command line. Every operation is a management API
//! request, sent to a running server (`--server`, with a token or a password) or, offline,
//! straight to the API handlers over the data directory (SQLite takes care of a server
//! writing beside it).

pub mod commands;
pub mod transport;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use berth_core::ports::MetaStore;
use berth_core::tenancy::records::UserRecord;
use berth_core::tenancy::{Tenancy, TenancyConfig};
use clap::{Args, Subcommand};

use crate::config::{Config, Location};
use commands::ApiCommand;
use transport::{Login, Transport};

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// A running Berth to manage (e.g. `http://registry:5000`); without it, the data directory
    /// is managed directly.
    #[arg(long, env = "BERTH_SERVER", global = true)]
    server: Option<String>,
    /// A personal API token (`berth_pat_...`) to act with on the server.
    #[arg(long, env = "BERTH_TOKEN", hide_env_values = true, global = true, conflicts_with = "user")]
    token: Option<String>,
    /// An account to log in to the server as; its password comes from BERTH_PASSWORD or a prompt.
    #[arg(long, env = "BERTH_USER", global = true)]
    user: Option<String>,
    #[command(flatten)]
    location: Location,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create an account on the data directory (the first superuser, typically); works while
    /// the registry serves from it.
    CreateUser {
        name: String,
        /// Make the account a superuser.
        #[arg(long)]
        superuser: bool,
        #[command(flatten)]
        password: commands::PasswordSource,
    },
    #[command(flatten)]
    Api(ApiCommand),
}

/// Runs one `berth admin` command: prints the answer as JSON on standard output, or the
/// server's problem detail on standard error and fails.
pub async fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    let command = match args.command {
        AdminCommand::CreateUser { name, superuser, password } => {
            let password = password.read()?;
            let config = args.location.config()?;
            let user = create_user(&config, &name, password, superuser).await?;
            println!("created {}{}", user.name, if user.superuser { " (superuser)" } else { "" });
            return Ok(ExitCode::SUCCESS);
        }
        AdminCommand::Api(command) => command,
    };
    let call = command.call()?;
    let transport = match &args.server {
        Some(server) => Transport::online(server, login(args.token, args.user)?)?,
        None => Transport::offline(&args.location.config()?).await?,
    };
    let answer = transport.send(&call).await;
    transport.close().await;
    let answer = answer?;
    let text = pretty(&answer.body);
    if !answer.status.is_success() {
        eprintln!("error: {} {}: {}\n{text}", call.method, call.target, answer.status);
        return Ok(ExitCode::FAILURE);
    }
    if !text.is_empty() {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

fn login(token: Option<String>, user: Option<String>) -> anyhow::Result<Login> {
    Ok(match (token, user) {
        (Some(token), _) => Login::Token(token),
        (None, Some(user)) => {
            let password = match std::env::var("BERTH_PASSWORD") {
                Ok(password) => password,
                Err(_) => rpassword::prompt_password(format!("Password for {user}: "))?,
            };
            Login::Password { user, password }
        }
        (None, None) => Login::Anonymous,
    })
}

/// JSON bodies indented for people; anything else as it came.
fn pretty(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(body).trim_end().to_owned(),
    }
}

/// Creates an account; the only way in before any superuser exists.
pub async fn create_user(config: &Config, name: &str, password: String, superuser: bool) -> anyhow::Result<UserRecord> {
    let meta = crate::app::open_meta(config).await?;
    let store: Arc<dyn MetaStore> = meta.clone();
    let (tenancy, _audit) = Tenancy::new(store, &TenancyConfig::default());
    let user = tenancy.bootstrap_user(name, password, superuser).await;
    meta.close().await;
    Ok(user?)
}

/// The password from a file, standard input, or an interactive prompt (asked twice).
fn read_password(stdin: bool, file: Option<&Path>) -> anyhow::Result<String> {
    let first_line = |text: String| text.lines().next().unwrap_or("").to_owned();
    if let Some(file) = file {
        return Ok(first_line(std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?));
    }
    if stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
        return Ok(first_line(line));
    }
    let password = rpassword::prompt_password("Password: ")?;
    if rpassword::prompt_password("Password again: ")? != password {
        anyhow::bail!("the passwords differ");
    }
    Ok(password)
}
