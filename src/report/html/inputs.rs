//! The inputs of `netrun report`: results folders, summaries or a history,
//! their legend names, and where the report goes by default.

use std::path::{Path, PathBuf};

use super::data::{self, RunData};
use super::REPORT_HTML;

/// The runs behind `netrun report` inputs and where the report goes by
/// default: beside the input (`results/NAME/report.html`), or for several
/// inputs beside the first one.
pub fn load_inputs(paths: &[PathBuf]) -> anyhow::Result<(Vec<RunData>, PathBuf)> {
    let mut runs = Vec::new();
    let mut outs = Vec::new();
    for p in paths {
        let input = data::Input::resolve(p)?;
        let label = source_label(p, paths);
        outs.push(match &input {
            data::Input::Run { dir, .. } if dir.is_dir() => dir.join(REPORT_HTML),
            data::Input::Run { summary, .. } => summary.with_extension("report.html"),
            data::Input::History(h) => h.with_extension("report.html"),
        });
        runs.extend(input.load(&label)?);
    }
    let out = if outs.len() == 1 {
        outs.remove(0)
    } else {
        let stems: Vec<String> = paths
            .iter()
            .map(|p| source_label(p, paths).replace(['/', '\\'], "_"))
            .collect();
        let first = outs.remove(0);
        let dir = first
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        dir.join(format!("report-{}.html", stems.join("-vs-")))
    };
    Ok((runs, out))
}

/// A path's name for legends: its stem (`cache`), or its path when another
/// input has the same stem (`old/cache`, `new/cache`).
fn source_label(input: &Path, all: &[PathBuf]) -> String {
    let stem = |p: &Path| {
        let p = if p.is_dir() {
            p.to_path_buf()
        } else {
            p.with_extension("")
        };
        p.file_name().map(|s| s.to_string_lossy().into_owned())
    };
    let clash = all.iter().filter(|p| stem(p) == stem(input)).count() > 1;
    match stem(input) {
        Some(s) if !clash => s,
        _ => {
            let p = if input.is_dir() {
                input.to_path_buf()
            } else {
                input.with_extension("")
            };
            p.display().to_string().trim_end_matches('/').to_string()
        }
    }
}
