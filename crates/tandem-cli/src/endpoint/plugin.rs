//! `plugin:COMMAND [ARGS…]`: a go-plugin plugin started with this command line.

use super::{unsupported, ConnectError, Connection, Options};

/// The plugin's command line, split on whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) command: Vec<String>,
}

pub(super) fn parse(rest: &str) -> Result<Target, String> {
    let command: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
    if command.is_empty() {
        return Err(
            "missing command in \"plugin:\" (format is plugin:COMMAND, e.g. plugin:./adapters/fx)"
                .into(),
        );
    }
    Ok(Target { command })
}

pub(super) fn connect(t: &Target, _opts: &Options) -> Result<Connection, ConnectError> {
    Err(unsupported(
        "plugin",
        format!("plugin:{}", t.command.join(" ")),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn splits_the_command_line() {
        assert_eq!(
            parse("python -m tandem plugin m:app")
                .unwrap()
                .command
                .len(),
            5
        );
        assert!(parse("  ")
            .unwrap_err()
            .contains("format is plugin:COMMAND"));
    }
}
