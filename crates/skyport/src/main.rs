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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
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
