use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use berth::config::Config;
use clap::{Args, Parser, Subcommand};

/// Berth: a container registry (OCI Distribution API v1.1).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry.
    Serve(ServeArgs),
    /// Manage accounts and keys.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// Where the configuration and data directory come from.
#[derive(Args)]
struct Location {
    /// TOML configuration file; flags and BERTH_* variables override what it sets.
    #[arg(long, env = "BERTH_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Directory for the database and blobs [default: ./berth-data].
    #[arg(long, env = "BERTH_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
}

impl Location {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(data_dir) = &self.data_dir {
            config.data_dir = data_dir.clone();
        }
        Ok(config)
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    location: Location,
    /// Address to listen on [default: 0.0.0.0:5000].
    #[arg(long, env = "BERTH_LISTEN")]
    listen: Option<SocketAddr>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an account (the first superuser, typically). Works on the data directory, also
    /// while the registry serves from it.
    CreateUser {
        name: String,
        /// Make the account a superuser.
        #[arg(long)]
        superuser: bool,
        /// Read the password from standard input (first line).
        #[arg(long, conflicts_with = "password_file")]
        password_stdin: bool,
        /// Read the password from this file (first line).
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        location: Location,
    },
    /// Start signing tokens with a new key; tokens signed with the old one stay valid until
    /// they expire.
    RotateSigningKey {
        #[command(flatten)]
        location: Location,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Admin(command) => runtime.block_on(admin(command)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.location.config()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let mut running = berth::app::start(&config).await?;
    tokio::select! {
        result = running.wait() => return result,
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
    running.stop().await
}

async fn admin(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateUser { name, superuser, password_stdin, password_file, location } => {
            let password = read_password(password_stdin, password_file.as_deref())?;
            let config = location.config()?;
            let user = berth::admin::create_user(&config, &name, password, superuser).await?;
            println!("created {}{}", user.name, if user.superuser { " (superuser)" } else { "" });
            Ok(())
        }
        AdminCommand::RotateSigningKey { location } => {
            let config = location.config()?;
            let lifetime = config.auth_config().token_lifetime;
            let id = berth_server::auth::keys::rotate_dir(&berth::app::keys_dir(&config), lifetime)?;
            println!("new signing key {id}; a running server starts using it within a minute");
            Ok(())
        }
    }
}

/// The password from a file, standard input, or an interactive prompt (asked twice).
fn read_password(stdin: bool, file: Option<&std::path::Path>) -> anyhow::Result<String> {
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

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
