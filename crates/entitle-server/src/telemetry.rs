use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

/// Logs to stderr; `RUST_LOG` sets the filter (default: info, with sqlx's per-statement logs off).
/// Keep the guard until exit: dropping it writes what is still queued.
///
/// Lines go through [`crate::log_writer`], so a stderr that is closed, full or not read never
/// blocks nor fails a task; the library's own complaint about a failed write (itself a write to
/// stderr, which panics when stderr is gone) is off for the same reason.
pub fn init(format: LogFormat) -> crate::log_writer::FlushGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let (writer, guard) = crate::log_writer::stderr();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // Span fields (request id, client, route) go in each line's `span`/`spans`.
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).try_init(),
    };
    guard
}

#[cfg(test)]
mod tests {
    use super::LogFormat;
    use crate::cli::Cli;
    use clap::Parser;

    #[test]
    fn the_log_format_is_text_unless_asked_for_json() {
        let default = Cli::try_parse_from(["entitle", "serve"]).unwrap();
        assert_eq!(default.log_format, LogFormat::Text);
        let json = Cli::try_parse_from(["entitle", "--log-format", "json", "serve"]).unwrap();
        assert_eq!(json.log_format, LogFormat::Json);
        assert!(Cli::try_parse_from(["entitle", "--log-format", "xml", "serve"]).is_err());
    }
}
