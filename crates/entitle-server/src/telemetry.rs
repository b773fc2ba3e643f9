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
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // Span fields (request id, client, route) go in each line's `span`/`spans`.
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).try_init(),
    };
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
