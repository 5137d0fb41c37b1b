//! `plugin:COMMAND [ARGS…]`: a go-plugin plugin started with this command line.

use tandem::plugin::Host;
use tower::util::BoxCloneService;

use super::{absent_or_start, ConnectError, Connection, Options};

/// The plugin's command line, split into words as a shell would (quotes respected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) command: Vec<String>,
}

pub(super) fn parse(rest: &str) -> Result<Target, String> {
    let command = split_words(rest)?;
    if command.is_empty() {
        return Err(
            "missing command in \"plugin:\" (format is plugin:COMMAND, e.g. plugin:./adapters/fx)"
                .into(),
        );
    }
    Ok(Target { command })
}

/// Splits a command line into words: whitespace separates, `'…'` is literal, `"…"` allows
/// `\"` and `\\`, a backslash outside quotes escapes the next character.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(unclosed(s, '\'')),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(unclosed(s, '"')),
                        },
                        Some(c) => word.push(c),
                        None => return Err(unclosed(s, '"')),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn unclosed(s: &str, quote: char) -> String {
    format!(
        "unclosed {quote} in \"plugin:{s}\" (close the quote, e.g. plugin:'./my plugin' --flag)"
    )
}

pub(super) async fn connect(t: &Target, opts: &Options) -> Result<Connection, ConnectError> {
    let (program, args) = t.command.split_first().ok_or_else(|| {
        ConnectError::Start(tandem::Error::bad_request(
            tandem::Transport::Plugin,
            "plugin:",
            "empty plugin command",
        ))
    })?;
    let mut builder = Host::builder(program)
        .args(args)
        .auto_mtls(opts.tls)
        .restart(false);
    if let Some((k, v)) = &opts.cookie {
        builder = builder.handshake(k.clone(), v.clone());
    }
    if let Some(n) = opts.version {
        builder = builder.versions([n]);
    }
    if let Some(dir) = &opts.cwd {
        builder = builder.current_dir(dir.clone());
    }
    let host = builder.start().await.map_err(|e| {
        absent_or_start(e, || {
            "check the plugin command (run it with the host's cookie to see its error), and that \
             --cookie KEY=VALUE, --version N and --tls match what the plugin expects"
                .to_owned()
        })
    })?;
    let closer = host.clone();
    Ok(Connection::new("plugin", BoxCloneService::new(host))
        .with_closer(async move { closer.kill().await }))
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

    #[test]
    fn respects_quotes_like_a_shell() {
        assert_eq!(
            parse(r#"'./my plugin' --name "a \"b\"" c\ d"#)
                .unwrap()
                .command,
            vec!["./my plugin", "--name", "a \"b\"", "c d"]
        );
        assert_eq!(parse("x ''").unwrap().command, vec!["x", ""]);
        assert!(parse("x 'open").unwrap_err().contains("unclosed '"));
        assert!(parse("x \"open").unwrap_err().contains("unclosed \""));
    }
}
