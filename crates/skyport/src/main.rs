//! `skyport`: the administrator's command. Today it runs the local all-in-one server
//! (`skyport serve`); every piece of logic lives in the library crates, this binary only wires
//! configuration, storage and routers together.

mod config;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "skyport",
    version,
    about = "Skyport: HPC inventory, discovery and network boot"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the Skyport APIs locally on the embedded store (no AWS needed).
    ///
    /// Examples:
    ///   skyport serve
    ///   skyport serve --data /var/lib/skyport --listen 127.0.0.1:27779
    ///   SKYPORT_LOG_FORMAT=json skyport serve --config /etc/skyport/server.toml
    Serve(config::ServeArgs),
    /// Mint a bearer token from the local server's signing key (created if missing).
    ///
    /// Examples:
    ///   export TOKEN=$(skyport token --scope admin)
    ///   skyport token --scope read --ttl 600 --sub dashboard
    ///   skyport token --scope edge --ttl 2592000 --sub site-a > /etc/skyport/edge-token
    Token {
        /// Data directory of the local server (its key is in <data>/auth/).
        #[arg(long, env = "SKYPORT_DATA", default_value = config::DEFAULT_DATA)]
        data: std::path::PathBuf,
        /// Scopes: read, write, admin, edge (comma-separated or repeated).
        #[arg(long, value_delimiter = ',', default_value = "read")]
        scope: Vec<String>,
        /// Who the token is for (the `sub` claim).
        #[arg(long, default_value = "admin")]
        sub: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

fn token(data: &std::path::Path, scope: &[String], sub: &str, ttl: u64) -> anyhow::Result<()> {
    if ttl == 0 || ttl > 366 * 86_400 {
        anyhow::bail!("--ttl must be between 1 second and a year");
    }
    let issuer = skyport_auth::LocalIssuer::load_or_create(data)?;
    let t = issuer.mint(sub, scope, std::time::Duration::from_secs(ttl))?;
    println!("{t}");
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Token {
            data,
            scope,
            sub,
            ttl,
        } => token(&data, &scope, &sub, ttl),
        Command::Serve(args) => match config::ServeConfig::resolve(&args) {
            Ok(cfg) => serve::run(cfg).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skyport: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
