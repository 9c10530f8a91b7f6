use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use berth::config::Location;
use clap::{Args, Parser, Subcommand};

/// Berth: a container registry (OCI Distribution API v1.1).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// How log lines are written to standard error.
    #[arg(long, env = "BERTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry.
    Serve(ServeArgs),
    /// Manage users, organizations, teams, robots, repositories and permissions, on the data
    /// directory or on a running server.
    Admin(berth::admin::AdminArgs),
    /// Bring the database's schema up to this Berth's (stop `berth serve` first).
    Migrate(MigrateArgs),
    /// Move this single-machine registry (SQLite and its blobs) into the empty PostgreSQL
    /// database and blob store another configuration names (stop `berth serve` first).
    MigrateStore(MigrateStoreArgs),
    /// Check the configuration: prints the effective one (secrets redacted) and exits
    /// non-zero on any problem.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Load a registry (Berth or not) with several workloads at once and report latency
    /// percentiles; exits with status 3 on a regression against --baseline.
    Bench(berth::bench::BenchArgs),
}

#[derive(Args)]
struct MigrateArgs {
    #[command(flatten)]
    location: Location,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration with secrets redacted; exit 1 on any problem.
    Check(ConfigCheckArgs),
}

#[derive(Args)]
struct ConfigCheckArgs {
    #[command(flatten)]
    location: Location,
}

#[derive(Args)]
struct MigrateStoreArgs {
    /// The registry to move.
    #[command(flatten)]
    location: Location,
    /// The configuration of where it goes (its `[database] url` and `[storage]`).
    #[arg(long)]
    to: std::path::PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    location: Location,
    /// Address to listen on [default: 0.0.0.0:5000].
    #[arg(long, env = "BERTH_LISTEN")]
    listen: Option<SocketAddr>,
    /// The URL clients reach this registry at, when it sits behind a proxy or load balancer
    /// (names the token realm) [default: `[auth] public_url`, else the request's Host].
    #[arg(long, env = "BERTH_PUBLIC_URL")]
    public_url: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first) [default:
    /// `[tls] cert`]; re-read when it changes or on SIGHUP.
    #[arg(long, env = "BERTH_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert [default: `[tls] key`].
    #[arg(long, env = "BERTH_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)).map(|()| ExitCode::SUCCESS),
        Command::Admin(args) => runtime.block_on(berth::admin::run(args)),
        Command::Bench(args) => runtime.block_on(berth::bench::run(args)),
        Command::Migrate(args) => runtime.block_on(migrate(args)).map(|()| ExitCode::SUCCESS),
        Command::Config(ConfigCommand::Check(args)) => config_check(args),
        Command::MigrateStore(args) => runtime.block_on(migrate_store(args)).map(|()| ExitCode::SUCCESS),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.location.config()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(public_url) = args.public_url {
        config.auth.public_url = Some(public_url);
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        (config.tls.cert, config.tls.key) = (Some(cert), Some(key));
    }
    let mut running = berth::app::start(&config).await?;
    tokio::select! {
        result = running.wait() => return result,
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
    running.stop().await
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let config = args.location.config()?;
    let applied = berth::app::migrate(&config).await?;
    if applied.is_empty() {
        println!("the database schema is up to date");
    }
    for migration in applied {
        println!("applied {migration}");
    }
    Ok(())
}

fn config_check(args: ConfigCheckArgs) -> anyhow::Result<ExitCode> {
    let config = args.location.config()?;
    print!("{}", config.to_redacted_toml()?);
    let problems = config.problems();
    for problem in &problems {
        eprintln!("problem: {problem}");
    }
    Ok(if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn migrate_store(args: MigrateStoreArgs) -> anyhow::Result<()> {
    let from = args.location.config()?;
    let to = berth::config::Config::from_file(&args.to)?;
    let moved = berth::migrate_store::migrate_store(&from, &to).await?;
    println!("copied {} blobs ({} bytes), every digest checked", moved.blobs, moved.bytes);
    for (table, rows) in moved.rows {
        println!("copied {rows} rows of {table}");
    }
    println!("the registry is ready to serve with --config {}", args.to.display());
    Ok(())
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
