use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    entitle_server::server::tune_allocator();
    // Parsed first: the log format is a flag. (Clap prints its own errors without tracing.)
    let cli = entitle_server::cli::Cli::parse();
    let _flush_logs = entitle_server::telemetry::init(cli.log_format);
    match entitle_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
