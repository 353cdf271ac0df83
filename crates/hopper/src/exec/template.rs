//! Command templates of the exec worker: `--command KIND='prog --size {size} {files}'`.
//!
//! A template is split into words once, at start, the way a shell would split it (whitespace,
//! single and double quotes, backslash), but no shell ever runs: each `{name}` is filled from the
//! job's args object and the result is an argv, so a value can never inject a second command.
//!
//! Rules:
//! - The program (first word) is a literal: a job never picks what runs.
//! - A word that is exactly one placeholder becomes one argument, or one argument per element
//!   when the value is an array (`{files}` with `["a", "b"]` gives `a b`).
//! - A placeholder inside a word (`--to={to}`) is replaced in place; arrays are refused there.
//! - Strings are used as they are, numbers and booleans as their JSON text, objects as compact
//!   JSON; `null` and missing names are refused. `{a.b}` reads a nested field.
//! - `{{` and `}}` are literal braces; placeholders are literal inside single quotes.
//!
//! Values still reach the program as arguments it parses: a value starting with `-` can look
//! like an option. Put `--` before placeholders where the program supports it.

use std::fmt;

use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandTemplate {
    /// The program to run (never from a job).
    program: String,
    /// The arguments, each a word of the template.
    words: Vec<Word>,
}

/// One word of a template.
#[derive(Debug, Clone, PartialEq)]
enum Word {
    /// Exactly one placeholder: one argument, or one per array element.
    Whole(String),
    /// Literal text with placeholders inside (or none).
    Pieces(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(String),
}

/// Why a template does not parse; the worker refuses to start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// `--command` without `KIND=`.
    #[error("`{0}` is not KIND=TEMPLATE")]
    NoKind(String),
    /// No words at all.
    #[error("the command of kind `{0}` is empty")]
    Empty(String),
    /// A quote was opened and never closed.
    #[error("unclosed {quote} quote in `{template}`")]
    UnclosedQuote {
        /// `single` or `double`.
        quote: &'static str,
        /// The template.
        template: String,
    },
    /// A `{` or `}` that is not a placeholder.
    #[error("stray `{brace}` in `{template}` (write `{brace}{brace}` for a literal one)")]
    StrayBrace {
        /// The brace.
        brace: char,
        /// The template.
        template: String,
    },
    /// A placeholder with a bad name.
    #[error("`{{{name}}}` is not a placeholder name (letters, digits, `_`, dotted paths)")]
    BadName {
        /// The name between the braces.
        name: String,
    },
    /// The program came from a placeholder.
    #[error("the program of `{0}` must be literal, not a placeholder")]
    ProgramPlaceholder(String),
}

/// Why a job's args do not fill its template; the job fails without retry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpandError {
    /// The args have no such field.
    #[error("args.{0} is missing")]
    Missing(String),
    /// The field is null.
    #[error("args.{0} is null")]
    Null(String),
    /// An array inside a word.
    #[error("args.{0} is an array, which only fits a placeholder standing alone as a word")]
    ArrayInWord(String),
    /// A NUL byte, which no argument can carry.
    #[error("args.{0} contains a NUL byte")]
    Nul(String),
}

/// Shows the template the way it could be written again: words with spaces or quotes in
/// double quotes, braces of literal text doubled.
impl fmt::Display for CommandTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let literal = |t: &str| t.replace('{', "{{").replace('}', "}}");
        let mut words = vec![literal(&self.program)];
        for w in &self.words {
            words.push(match w {
                Word::Whole(name) => format!("{{{name}}}"),
                Word::Pieces(pieces) => pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Text(t) => literal(t),
                        Piece::Var(name) => format!("{{{name}}}"),
                    })
                    .collect(),
            });
        }
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if w.is_empty() || w.chars().any(|c| c.is_whitespace() || "'\"\\".contains(c)) {
                write!(f, "\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""))?;
            } else {
                f.write_str(w)?;
            }
        }
        Ok(())
    }
}

/// Parses one `--command` value: `KIND=TEMPLATE`.
pub fn parse_spec(spec: &str) -> Result<(String, CommandTemplate), TemplateError> {
    let Some((kind, template)) = spec.split_once('=') else {
        return Err(TemplateError::NoKind(spec.to_string()));
    };
    let kind = kind.trim();
    if hopper_types::validate_name("kind", kind).is_err() {
        return Err(TemplateError::NoKind(spec.to_string()));
    }
    let t = CommandTemplate::parse(template).map_err(|e| match e {
        TemplateError::Empty(_) => TemplateError::Empty(kind.to_string()),
        other => other,
    })?;
    Ok((kind.to_string(), t))
}

/// A word being built by the splitter: its pieces, and whether it is one bare placeholder.
#[derive(Default)]
struct WordBuilder {
    pieces: Vec<Piece>,
    text: String,
    started: bool,
    /// Set when anything other than one placeholder went into the word (text, quotes).
    impure: bool,
}

impl WordBuilder {
    fn push_char(&mut self, c: char) {
        self.text.push(c);
        self.started = true;
        self.impure = true;
    }

    fn push_var(&mut self, name: String) {
        if !self.text.is_empty() {
            self.pieces
                .push(Piece::Text(std::mem::take(&mut self.text)));
        }
        self.pieces.push(Piece::Var(name));
        self.started = true;
    }

    fn finish(mut self) -> Option<Word> {
        if !self.started {
            return None;
        }
        if !self.text.is_empty() {
            self.pieces
                .push(Piece::Text(std::mem::take(&mut self.text)));
        }
        if !self.impure
            && let [Piece::Var(name)] = self.pieces.as_slice()
        {
            return Some(Word::Whole(name.clone()));
        }
        Some(Word::Pieces(self.pieces))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

impl CommandTemplate {
    /// Splits and checks a template.
    pub fn parse(template: &str) -> Result<CommandTemplate, TemplateError> {
        let stray = |brace| TemplateError::StrayBrace {
            brace,
            template: template.to_string(),
        };
        let mut words: Vec<Word> = Vec::new();
        let mut cur = WordBuilder::default();
        let mut chars = template.chars().peekable();
        // None: unquoted; Some('\'') or Some('"'): inside quotes.
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => {
                    if let Some(w) = std::mem::take(&mut cur).finish() {
                        words.push(w);
                    }
                }
                (None, '\'') | (None, '"') => {
                    quote = Some(c);
                    cur.started = true;
                    cur.impure = true;
                }
                (Some(q), c) if c == q => quote = None,
                (Some('\''), c) => cur.push_char(c),
                (None, '\\') | (Some('"'), '\\') => match chars.next() {
                    Some(next) => cur.push_char(next),
                    None => cur.push_char('\\'),
                },
                (_, '{') if chars.peek() == Some(&'{') => {
                    chars.next();
                    cur.push_char('{');
                }
                (_, '}') if chars.peek() == Some(&'}') => {
                    chars.next();
                    cur.push_char('}');
                }
                (_, '{') => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => name.push(ch),
                            None => return Err(stray('{')),
                        }
                    }
                    if !valid_name(&name) {
                        return Err(TemplateError::BadName { name });
                    }
                    cur.push_var(name);
                }
                (_, '}') => return Err(stray('}')),
                (_, c) => cur.push_char(c),
            }
        }
        if let Some(q) = quote {
            return Err(TemplateError::UnclosedQuote {
                quote: if q == '\'' { "single" } else { "double" },
                template: template.to_string(),
            });
        }
        if let Some(w) = cur.finish() {
            words.push(w);
        }
        if words.is_empty() {
            return Err(TemplateError::Empty(template.to_string()));
        }
        let program = match words.remove(0) {
            Word::Pieces(pieces) if pieces.iter().all(|p| matches!(p, Piece::Text(_))) => pieces
                .into_iter()
                .map(|p| match p {
                    Piece::Text(t) => t,
                    Piece::Var(_) => String::new(),
                })
                .collect(),
            _ => return Err(TemplateError::ProgramPlaceholder(template.to_string())),
        };
        Ok(CommandTemplate { program, words })
    }

    /// The argv (program first) for a job with these args.
    pub fn expand(&self, args: &Value) -> Result<Vec<String>, ExpandError> {
        let mut argv = vec![self.program.clone()];
        for w in &self.words {
            match w {
                Word::Whole(name) => match lookup(args, name)? {
                    Value::Array(items) => {
                        for item in items {
                            argv.push(scalar_text(name, item)?);
                        }
                    }
                    v => argv.push(scalar_text(name, v)?),
                },
                Word::Pieces(pieces) => {
                    let mut arg = String::new();
                    for p in pieces {
                        match p {
                            Piece::Text(t) => arg.push_str(t),
                            Piece::Var(name) => match lookup(args, name)? {
                                Value::Array(_) => {
                                    return Err(ExpandError::ArrayInWord(name.clone()));
                                }
                                v => arg.push_str(&scalar_text(name, v)?),
                            },
                        }
                    }
                    argv.push(arg);
                }
            }
        }
        Ok(argv)
    }
}

/// `args.a.b`, or why not.
fn lookup<'a>(args: &'a Value, name: &str) -> Result<&'a Value, ExpandError> {
    let mut v = args;
    for part in name.split('.') {
        v = v
            .get(part)
            .ok_or_else(|| ExpandError::Missing(name.to_string()))?;
    }
    Ok(v)
}

/// One value as argument text.
fn scalar_text(name: &str, v: &Value) -> Result<String, ExpandError> {
    let text = match v {
        Value::Null => return Err(ExpandError::Null(name.to_string())),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains('\0') {
        return Err(ExpandError::Nul(name.to_string()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expand(template: &str, args: Value) -> Result<Vec<String>, ExpandError> {
        CommandTemplate::parse(template).unwrap().expand(&args)
    }

    #[test]
    fn placeholders_become_separate_arguments() {
        assert_eq!(
            expand(
                "convert {src} -resize {size} {dst}",
                json!({"src": "a b.png", "size": 640, "dst": "out; rm -rf /"})
            )
            .unwrap(),
            vec!["convert", "a b.png", "-resize", "640", "out; rm -rf /"]
        );
    }

    #[test]
    fn arrays_spread_only_as_whole_words() {
        assert_eq!(
            expand(
                "tar czf {out} -- {files}",
                json!({"out": "x.tgz", "files": ["a", "b", 3]})
            )
            .unwrap(),
            vec!["tar", "czf", "x.tgz", "--", "a", "b", "3"]
        );
        assert_eq!(
            expand("p --f={files}", json!({"files": ["a"]})),
            Err(ExpandError::ArrayInWord("files".into()))
        );
    }

    #[test]
    fn placeholders_inside_words_and_nested_paths() {
        assert_eq!(
            expand(
                "mail --to={user.email} --flag={on} --meta {m}",
                json!({"user": {"email": "a@b"}, "on": true, "m": {"k": 1}})
            )
            .unwrap(),
            vec!["mail", "--to=a@b", "--flag=true", "--meta", r#"{"k":1}"#]
        );
    }

    #[test]
    fn quoting_and_escapes_follow_shell_rules_without_a_shell() {
        assert_eq!(
            expand(
                r#"echo 'single {x} $HOME' "double {x}" a\ b {{literal}}"#,
                json!({"x": "X"})
            )
            .unwrap(),
            vec!["echo", "single {x} $HOME", "double X", "a b", "{literal}"]
        );
        // A quoted lone placeholder is still one argument even when empty.
        assert_eq!(
            expand(r#"p "{x}""#, json!({"x": ""})).unwrap(),
            vec!["p", ""]
        );
    }

    #[test]
    fn missing_and_null_args_are_refused() {
        assert_eq!(
            expand("p {a}", json!({})),
            Err(ExpandError::Missing("a".into()))
        );
        assert_eq!(
            expand("p {a}", json!(null)),
            Err(ExpandError::Missing("a".into()))
        );
        assert_eq!(
            expand("p {a}", json!({"a": null})),
            Err(ExpandError::Null("a".into()))
        );
        assert_eq!(
            expand("p {a}", json!({"a": "x\u{0}y"})),
            Err(ExpandError::Nul("a".into()))
        );
    }

    #[test]
    fn bad_templates_are_refused_at_start() {
        assert!(matches!(
            CommandTemplate::parse("{prog} x"),
            Err(TemplateError::ProgramPlaceholder(_))
        ));
        assert!(matches!(
            CommandTemplate::parse("p {a"),
            Err(TemplateError::StrayBrace { brace: '{', .. })
        ));
        assert!(matches!(
            CommandTemplate::parse("p a}"),
            Err(TemplateError::StrayBrace { brace: '}', .. })
        ));
        assert!(matches!(
            CommandTemplate::parse("p {a b}"),
            Err(TemplateError::BadName { .. })
        ));
        assert!(matches!(
            CommandTemplate::parse("p 'open"),
            Err(TemplateError::UnclosedQuote {
                quote: "single",
                ..
            })
        ));
        assert!(matches!(
            CommandTemplate::parse("   "),
            Err(TemplateError::Empty(_))
        ));
    }

    #[test]
    fn specs_name_their_kind() {
        let (kind, t) = parse_spec("resize=convert {src} {dst}").unwrap();
        assert_eq!(kind, "resize");
        assert_eq!(t.to_string(), "convert {src} {dst}");
        let (_, t) = parse_spec(r#"k=sh -c "echo {x} >&2; exit 3" '{{a}}'"#).unwrap();
        assert_eq!(t.to_string(), r#"sh -c "echo {x} >&2; exit 3" {{{{a}}}}"#);
        // What Display writes parses back to the same template.
        assert_eq!(CommandTemplate::parse(&t.to_string()).unwrap(), t);
        assert!(matches!(
            parse_spec("convert {src}"),
            Err(TemplateError::NoKind(_))
        ));
        assert!(matches!(parse_spec("k="), Err(TemplateError::Empty(k)) if k == "k"));
        assert!(matches!(
            parse_spec("prog --a=b"),
            Err(TemplateError::NoKind(_))
        ));
    }
}
