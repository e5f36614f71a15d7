//! Scenario errors that point into the file: `file:line:col: key: message`,
//! the offending line and a caret, every error of a file at once.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The candidate `word` was most likely meant to be, when one is close
/// enough to be a typo (Jaro-Winkler similarity from `strsim`, which favours a
/// shared beginning, as in `latency_p99` → `latency_p99_ms`).
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.84)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)`, or nothing.
pub fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates).map_or_else(String::new, |c| format!(" (did you mean `{c}`?)"))
}

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Byte range in the file, when known.
    pub span: Option<Range<usize>>,
    /// The TOML key (`workload.page.requests`), or empty for syntax errors.
    pub key: String,
    /// What was found and what was expected.
    pub message: String,
}

/// Every problem found in one scenario file.
#[derive(Debug, Clone)]
pub struct ScenarioErrors {
    pub file: PathBuf,
    pub source: String,
    pub errors: Vec<Diagnostic>,
}

impl ScenarioErrors {
    pub fn new(file: &Path, source: &str) -> Self {
        ScenarioErrors {
            file: file.to_path_buf(),
            source: source.to_string(),
            errors: Vec::new(),
        }
    }

    pub fn push(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.errors.push(Diagnostic {
            span,
            key: key.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{} has {} error{}",
            self.file.display(),
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for d in &self.errors {
            write!(f, "\n  {}", self.file.display())?;
            let mut snippet = None;
            if let Some(span) = &d.span {
                let (line, col) = self.line_col(span.start);
                write!(f, ":{line}:{col}")?;
                if let Some(text) = self.source.lines().nth(line - 1) {
                    let width = self.source[span.clone()]
                        .lines()
                        .next()
                        .map_or(1, |s| s.chars().count().max(1));
                    snippet = Some((line, col, text.to_string(), width));
                }
            }
            if d.key.is_empty() {
                write!(f, ": {}", d.message)?;
            } else {
                write!(f, ": `{}`: {}", d.key, d.message)?;
            }
            if let Some((line, col, text, width)) = snippet {
                let gutter = line.to_string().len();
                write!(
                    f,
                    "\n  {:gutter$} |\n  {line} | {text}\n  {:gutter$} | {}{}",
                    "",
                    "",
                    " ".repeat(col - 1),
                    "^".repeat(
                        width
                            .min(text.chars().count().saturating_sub(col - 1))
                            .max(1)
                    ),
                )?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested_and_strangers_are_not() {
        let metrics = ["latency_p99_ms", "latency_p90_ms", "loss_percent", "errors"];
        assert_eq!(did_you_mean("latency_p99", metrics), Some("latency_p99_ms"));
        assert_eq!(did_you_mean("los_percent", metrics), Some("loss_percent"));
        assert_eq!(did_you_mean("eror", metrics), Some("errors"));
        assert_eq!(did_you_mean("throughput", metrics), None);
        assert_eq!(did_you_mean("qos", ["page"]), None);
        assert_eq!(
            suggestion("pgae", ["page", "qos"]),
            " (did you mean `page`?)"
        );
        assert_eq!(suggestion("x", Vec::<&str>::new()), "");
    }
}
