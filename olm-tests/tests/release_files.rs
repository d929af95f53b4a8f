//! The release machinery and the project files stay consistent with the code:
//!
//! - `workflows_pass_actionlint`: every workflow in `.github/workflows/`
//!   passes actionlint (which also runs shellcheck on the `run:` scripts when
//!   `shellcheck` is in `PATH`). The binary is `$LOCUST_ACTIONLINT` when that
//!   is set (used first: e.g. `LOCUST_ACTIONLINT=/tmp/actionlint`), otherwise
//!   `<tools>/bin/actionlint` built by `olm-tests/tools/build.sh` from the
//!   pinned `olm-tests/tools/actionlint` module; without either the test skips
//!   (fails with `CI` or `LOCUST_REQUIRE_TOOLS` set).
//! - `release_workflow_builds_what_the_release_list_names`: the release
//!   workflow builds the operator, bundle and catalog images with
//!   `manifests-gen image ...` and pushes each layout to the reference
//!   manifests-gen printed, which lies in `OPERATOR_IMAGE_REPO`,
//!   `BUNDLE_IMAGE_REPO` and `CATALOG_IMAGE_REPO`.
//! - `community_operators_script_copies_the_bundle`: the OperatorHub.io
//!   submission is the committed bundle, byte for byte.
//! - `project_files_exist`: LICENSE (Apache-2.0), SECURITY.md, CONTRIBUTING.md
//!   and CHANGELOG.md (with a section for the current version).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use olm_tests::operator::workspace_root;
use olm_tests::tools::tool_or_skip;
use semver::Version;
use serde_json::Value;

/// Environment variable naming an actionlint binary to use instead of the
/// tools' `bin/actionlint`.
const ACTIONLINT_ENV: &str = "LOCUST_ACTIONLINT";

const PACKAGE: &str = "locust-k8s-operator";
const CSV: &str = "bundle/manifests/locust-k8s-operator.clusterserviceversion.yaml";

fn read(rel: &str) -> Result<String> {
    let path = workspace_root().join(rel);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn yaml(rel: &str) -> Result<Value> {
    olm_tests::yaml::from_str(&read(rel)?).with_context(|| format!("parsing {rel}"))
}

/// `spec.version` of the committed CSV: the release the bundle describes.
fn bundle_version() -> Result<Version> {
    let csv = yaml(CSV)?;
    let version = csv["spec"]["version"]
        .as_str()
        .with_context(|| format!("{CSV} has no spec.version"))?;
    Version::parse(version).with_context(|| format!("{CSV}: spec.version {version:?}"))
}

fn actionlint_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(ACTIONLINT_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    tool_or_skip(
        "workflows_pass_actionlint",
        "actionlint",
        &format!(", or set {ACTIONLINT_ENV}"),
    )
}

fn workflow_files() -> Result<Vec<PathBuf>> {
    let dir = workspace_root().join(".github/workflows");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[test]
fn workflows_pass_actionlint() -> Result<()> {
    let Some(actionlint) = actionlint_binary() else {
        return Ok(());
    };
    let files = workflow_files()?;
    for name in ["ci.yml", "release.yml", "community-operators.yml"] {
        ensure!(
            files.iter().any(|f| f.ends_with(name)),
            ".github/workflows/{name} is missing"
        );
    }
    let root = workspace_root();
    // Paths relative to the root, as actionlint reports them; naming the
    // files also works in a source tree without .git.
    let relative: Vec<&Path> = files
        .iter()
        .map(|f| f.strip_prefix(&root).unwrap_or(f))
        .collect();
    let output = Command::new(&actionlint)
        .arg("-no-color")
        .args(&relative)
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", actionlint.display()))?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success() && report.trim().is_empty(),
        "actionlint ({}) exited with {} on {} workflow(s):\n{report}",
        actionlint.display(),
        output.status,
        files.len()
    );
    let shellcheck = Command::new("shellcheck")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !shellcheck {
        eprintln!("note: shellcheck is not in PATH: actionlint did not check the run: scripts");
    }
    Ok(())
}

/// A workflow step: its job, position and `run:` script (continuation lines
/// joined).
struct Step {
    job: String,
    index: usize,
    lines: Vec<String>,
}

impl Step {
    fn line(&self, pattern: &str) -> Option<&str> {
        self.lines
            .iter()
            .map(String::as_str)
            .find(|l| l.contains(pattern))
    }
}

fn logical_lines(script: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in script.lines() {
        let line = raw.trim();
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(line);
            lines.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

fn run_steps(workflow: &Value) -> Result<Vec<Step>> {
    let jobs = workflow["jobs"]
        .as_object()
        .context("the workflow has no jobs")?;
    let mut steps = Vec::new();
    for (name, job) in jobs {
        let Some(list) = job["steps"].as_array() else {
            continue;
        };
        for (index, step) in list.iter().enumerate() {
            if let Some(run) = step["run"].as_str() {
                steps.push(Step {
                    job: name.to_owned(),
                    index,
                    lines: logical_lines(run),
                });
            }
        }
    }
    Ok(steps)
}

/// The argument after `--layout` in `line`: a double-quoted word (quotes
/// kept) or a plain one.
fn layout_arg(line: &str) -> Option<&str> {
    let rest = &line[line.find("--layout ")? + "--layout ".len()..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"')?;
        Some(&rest[..end + 2])
    } else {
        rest.split_whitespace().next()
    }
}

/// Where the release workflow publishes an image kind.
struct Published {
    job: String,
    index: usize,
}

/// The step of `steps` that builds `kind` with `manifests-gen image KIND` and
/// pushes that layout with crane to the reference manifests-gen printed
/// (read as `ref`), checking the reference's tag first.
fn published(steps: &[Step], kind: &str, tag: &str) -> Result<Published> {
    let build = format!("-p manifests-gen -- image {kind} ");
    let mut seen = Vec::new();
    for step in steps {
        let Some(line) = step.line(&build) else {
            continue;
        };
        let layout = layout_arg(line).with_context(|| format!("no --layout in {line:?}"))?;
        seen.push(format!("{}[{}] --layout {layout}", step.job, step.index));
        let Some(push_line) = step.lines.iter().find(|l| {
            l.contains("crane")
                && l.contains(" push ")
                && l.contains(&format!(" {layout} \"$ref\""))
        }) else {
            continue;
        };
        ensure!(
            step.line("read -r ref digest").is_some(),
            "{}[{}]: the pushed $ref must be the reference manifests-gen printed (read -r ref digest)",
            step.job,
            step.index
        );
        ensure!(
            step.line(&format!("test \"${{ref##*:}}\" = \"{tag}\""))
                .is_some(),
            "{}[{}]: the {kind} reference's tag is not checked against {tag}",
            step.job,
            step.index
        );
        // The layout's index.json names the image (or, multi-arch, the image
        // index) itself: `crane push --index` would push index.json as a
        // second index around it, under another digest than manifests-gen's.
        ensure!(
            !push_line.contains("--index"),
            "{}[{}]: {push_line:?}: push the layout without --index",
            step.job,
            step.index
        );
        ensure!(
            step.line("test \"$pushed\" = \"$digest\"").is_some(),
            "{}[{}]: the pushed digest of the {kind} image is not compared with the layout's",
            step.job,
            step.index
        );
        return Ok(Published {
            job: step.job.clone(),
            index: step.index,
        });
    }
    bail!(
        "release.yml never pushes the {kind} image built by `manifests-gen image {kind}` (builds seen: {seen:?})"
    )
}

#[test]
fn release_workflow_builds_what_the_release_list_names() -> Result<()> {
    let workflow = yaml(".github/workflows/release.yml")?;

    // Triggered by release tags. (Read into JSON, a key stays the string
    // `on`, not the YAML 1.1 boolean.)
    let on = workflow.get("on").context("release.yml has no `on`")?;
    let tags = on["push"]["tags"]
        .as_array()
        .context("release.yml is not triggered by tag pushes")?;
    ensure!(
        tags.iter().any(|t| t.as_str() == Some("v*.*.*")),
        "release.yml must run on tags v*.*.*: {tags:?}"
    );

    // manifests-gen prints references in the three repositories.
    let version = bundle_version()?;
    let expected = [
        (
            "operator",
            manifests_gen::OPERATOR_IMAGE_REPO,
            manifests_gen::bundle::operator_image(&version),
            "$VERSION",
        ),
        (
            "bundle",
            manifests_gen::BUNDLE_IMAGE_REPO,
            manifests_gen::bundle::bundle_image(&version),
            "v$VERSION",
        ),
        (
            "catalog",
            manifests_gen::CATALOG_IMAGE_REPO,
            manifests_gen::images::catalog_image(&version),
            "v$VERSION",
        ),
    ];
    let steps = run_steps(&workflow)?;
    let mut published_by = BTreeMap::new();
    for (kind, repo, reference, tag) in expected {
        let tag_value = tag.replace("$VERSION", &version.to_string());
        ensure!(
            reference == format!("{repo}:{tag_value}"),
            "manifests-gen's {kind} reference {reference} is not {repo}:{tag_value}"
        );
        let at = published(&steps, kind, tag)?;
        let job = &workflow["jobs"][at.job.as_str()];
        ensure!(
            job["permissions"]["packages"].as_str() == Some("write"),
            "job {} pushes the {kind} image without `permissions: packages: write`",
            at.job
        );
        published_by.insert(kind, at);
    }
    let job = &published_by["operator"].job;
    ensure!(
        published_by.values().all(|p| &p.job == job),
        "the images are pushed from different jobs"
    );
    let in_job: Vec<&Step> = steps.iter().filter(|s| &s.job == job).collect();
    let position = |pattern: &str| {
        in_job
            .iter()
            .find(|s| s.line(pattern).is_some())
            .map(|s| s.index)
    };

    // The operator image holds both architectures.
    let operator = in_job
        .iter()
        .find(|s| s.index == published_by["operator"].index)
        .context("the operator step")?;
    for arch in ["amd64", "arm64"] {
        ensure!(
            operator.line(&format!("--binary \"{arch}=")).is_some(),
            "the operator image is built without an {arch} binary"
        );
    }

    // Logged in to ghcr.io before the first push.
    let login = position("auth login ghcr.io").context("no `crane auth login ghcr.io`")?;
    let first_push = published_by.values().map(|p| p.index).min().unwrap_or(0);
    ensure!(login < first_push, "the ghcr.io login comes after a push");

    // The published bundle is validated before the catalog makes it installable.
    let bundle_env = in_job
        .iter()
        .find(|s| s.index == published_by["bundle"].index)
        .and_then(|s| s.line("BUNDLE_REF=$ref"));
    ensure!(
        bundle_env.is_some(),
        "the bundle step does not export BUNDLE_REF=$ref"
    );
    let plain = position("bundle validate \"$BUNDLE_REF\" --image-builder none")
        .context("no `operator-sdk bundle validate $BUNDLE_REF --image-builder none`")?;
    let suite = position("--select-optional suite=operatorframework").context(
        "no `operator-sdk bundle validate ... --select-optional suite=operatorframework`",
    )?;
    let catalog = &published_by["catalog"];
    ensure!(
        plain < catalog.index && suite < catalog.index,
        "the bundle is validated after the catalog is pushed"
    );
    ensure!(
        in_job
            .iter()
            .find(|s| s.index == catalog.index)
            .and_then(|s| s.line("crane\" tag \"$ref\" latest"))
            .is_some(),
        "the catalog image is not tagged latest"
    );

    // The CLI for the four targets, released with SHA256SUMS.
    let targets: Vec<&str> = workflow["jobs"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, job)| job["strategy"]["matrix"]["include"].as_array())
        .flatten()
        .filter_map(|entry| entry["target"].as_str())
        .collect();
    for target in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        ensure!(
            targets.contains(&target),
            "no build for {target}: {targets:?}"
        );
    }
    let release = steps
        .iter()
        .find(|s| s.line("gh release create").is_some())
        .context("no `gh release create`")?;
    let create = release.line("gh release create").unwrap_or_default();
    ensure!(
        create.contains("SHA256SUMS") && create.contains("*.tar.gz"),
        "the release does not attach the tarballs and SHA256SUMS: {create}"
    );
    Ok(())
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in
            std::fs::read_dir(&current).with_context(|| format!("listing {}", current.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir)?.to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn run_script(version: &str, out: &Path) -> Result<std::process::Output> {
    Command::new("bash")
        .arg(workspace_root().join("hack/community-operators-pr.sh"))
        .arg(version)
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .context("running hack/community-operators-pr.sh")
}

#[test]
fn community_operators_script_copies_the_bundle() -> Result<()> {
    let version = bundle_version()?;
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("community-operators");
    let output = run_script(&version.to_string(), &out)?;
    ensure!(
        output.status.success(),
        "hack/community-operators-pr.sh {version} failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        stdout.contains("git commit -s") && stdout.contains("gh pr create"),
        "the script does not print the pull request commands:\n{stdout}"
    );

    let package = out.join("operators").join(PACKAGE);
    let target = package.join(version.to_string());
    let bundle = workspace_root().join("bundle");
    let mut copied = 0;
    for part in ["manifests", "metadata", "tests"] {
        let source = bundle.join(part);
        if part == "tests" && !source.exists() {
            continue;
        }
        let expected = files_under(&source)?;
        ensure!(!expected.is_empty(), "bundle/{part} is empty");
        let actual = files_under(&target.join(part))?;
        ensure!(
            actual == expected,
            "{part}: copied {actual:?}, bundle has {expected:?}"
        );
        for rel in &expected {
            let want = std::fs::read(source.join(rel))?;
            let got = std::fs::read(target.join(part).join(rel))?;
            ensure!(
                want == got,
                "{part}/{} differs from bundle/{part}/{}",
                rel.display(),
                rel.display()
            );
            copied += 1;
        }
    }
    ensure!(copied >= 3, "only {copied} files copied");

    let ci: Value = olm_tests::yaml::from_str(&std::fs::read_to_string(package.join("ci.yaml"))?)
        .context("parsing ci.yaml")?;
    ensure!(
        ci["updateGraph"].as_str() == Some("replaces-mode"),
        "ci.yaml: updateGraph is {:?}",
        ci["updateGraph"]
    );

    // A version the bundle does not describe is refused, and nothing written.
    let wrong = Version::new(version.major, version.minor, version.patch + 1).to_string();
    let elsewhere = tmp.path().join("wrong");
    let output = run_script(&wrong, &elsewhere)?;
    ensure!(
        !output.status.success(),
        "the script accepted version {wrong} for a {version} bundle"
    );
    ensure!(
        !elsewhere.join("operators").exists(),
        "the script wrote files for the wrong version {wrong}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        stderr.contains(&version.to_string()),
        "the error does not name the bundle's version: {stderr}"
    );

    // The same version twice: a published bundle is never overwritten.
    let again = run_script(&version.to_string(), &out)?;
    ensure!(
        !again.status.success(),
        "the script overwrote an existing version directory"
    );
    Ok(())
}

#[test]
fn project_files_exist() -> Result<()> {
    let license = read("LICENSE")?;
    for needle in [
        "Apache License",
        "Version 2.0, January 2004",
        "http://www.apache.org/licenses/",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "1. Definitions.",
        "2. Grant of Copyright License.",
        "3. Grant of Patent License.",
        "4. Redistribution.",
        "5. Submission of Contributions.",
        "6. Trademarks.",
        "7. Disclaimer of Warranty.",
        "8. Limitation of Liability.",
        "9. Accepting Warranty or Additional Liability.",
        "END OF TERMS AND CONDITIONS",
        "APPENDIX: How to apply the Apache License to your work.",
    ] {
        ensure!(license.contains(needle), "LICENSE lacks {needle:?}");
    }
    ensure!(
        license.trim_start().starts_with("Apache License"),
        "LICENSE does not start with the license's title"
    );
    ensure!(
        read("Cargo.toml")?.contains("license = \"Apache-2.0\""),
        "the workspace Cargo.toml does not declare Apache-2.0"
    );

    let security = read("SECURITY.md")?;
    for needle in [
        "https://github.com/AbdelrhmanHamouda/locust-k8s-operator",
        "Report a vulnerability",
        "Supported versions",
    ] {
        ensure!(security.contains(needle), "SECURITY.md lacks {needle:?}");
    }

    let contributing = read("CONTRIBUTING.md")?;
    for needle in [
        "make test",
        "make demo",
        "make generate",
        "cargo fmt",
        "cargo clippy",
        "Conventional Commits",
        "docs/release.md",
    ] {
        ensure!(
            contributing.contains(needle),
            "CONTRIBUTING.md lacks {needle:?}"
        );
    }

    let changelog = read("CHANGELOG.md")?;
    let version = bundle_version()?;
    let headings: Vec<&str> = changelog.lines().filter(|l| l.starts_with("## ")).collect();
    ensure!(
        headings.first() == Some(&"## [Unreleased]"),
        "CHANGELOG.md must start with an `## [Unreleased]` section: {headings:?}"
    );
    let current = format!("## [{version}] - ");
    ensure!(
        headings.iter().any(|h| h.starts_with(&current)),
        "CHANGELOG.md has no `{current}YYYY-MM-DD` section for the bundle's version: {headings:?}"
    );
    Ok(())
}
