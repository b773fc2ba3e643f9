use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    entitle_server::server::tune_allocator();
    entitle_server::telemetry::init();
    let cli = entitle_server::cli::Cli::parse();
    match entitle_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
