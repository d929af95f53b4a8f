//! `manifests-gen check`: compares the generated files with the ones on disk.

use std::fmt;
use std::path::Path;

use similar::TextDiff;

use crate::{Error, Generated, existing_owned_files};

/// Differences between the generated files and the committed ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Files whose content differs: (path, unified diff committed → generated).
    pub changed: Vec<(String, String)>,
    /// Generated files that do not exist on disk.
    pub missing: Vec<String>,
    /// Files in `bundle/` or `catalog/` that the generator does not produce.
    pub stray: Vec<String>,
}

impl CheckReport {
    /// True when the committed files are exactly the generated ones.
    pub fn is_clean(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.stray.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (_, diff) in &self.changed {
            f.write_str(diff)?;
        }
        for path in &self.missing {
            writeln!(f, "missing: {path}")?;
        }
        for path in &self.stray {
            writeln!(
                f,
                "stray file (not generated; `manifests-gen generate` removes it): {path}"
            )?;
        }
        if self.is_clean() {
            writeln!(f, "up to date")?;
        } else {
            writeln!(
                f,
                "{} changed, {} missing, {} stray: run `cargo run -p manifests-gen -- generate`",
                self.changed.len(),
                self.missing.len(),
                self.stray.len()
            )?;
        }
        Ok(())
    }
}

/// Longest diff line shown in full; longer ones (base64 in the catalog) are cut.
pub const MAX_DIFF_LINE: usize = 200;

/// Cuts lines longer than [`MAX_DIFF_LINE`] characters, noting their length.
fn shorten_long_lines(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len().min(64 * 1024));
    for line in diff.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let count = body.chars().count();
        if count > MAX_DIFF_LINE {
            out.extend(body.chars().take(MAX_DIFF_LINE));
            out.push_str(&format!("… ({count} characters)"));
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Compares `generated` with the files under `out_dir`.
pub fn check(generated: &Generated, out_dir: &Path) -> Result<CheckReport, Error> {
    let mut report = CheckReport::default();
    for (rel, content) in &generated.files {
        let path = out_dir.join(rel);
        match std::fs::read(&path) {
            Ok(existing) if existing == *content => {}
            Ok(existing) => {
                let old = String::from_utf8_lossy(&existing);
                let new = String::from_utf8_lossy(content);
                let diff = TextDiff::from_lines(old.as_ref(), new.as_ref())
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{rel}"), &format!("b/{rel}"))
                    .to_string();
                report
                    .changed
                    .push((rel.clone(), shorten_long_lines(&diff)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => report.missing.push(rel.clone()),
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    for existing in existing_owned_files(out_dir)? {
        if !generated.files.contains_key(&existing) {
            report.stray.push(existing);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut() {
        let long = "x".repeat(500);
        let out = shorten_long_lines(&format!("-a\n+{long}\n b"));
        assert_eq!(
            out,
            format!("-a\n+{}… (501 characters)\n b", "x".repeat(199))
        );
    }
}
