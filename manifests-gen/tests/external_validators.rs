//! The generated bundle and catalog checked by the Operator Framework's own
//! tools: `operator-sdk bundle validate` (with the operatorframework suite),
//! `opm validate`, and `opm render` of the bundle directory compared with the
//! catalog's `olm.bundle`.
//!
//! The tools come from `olm-tests/tools/build.sh` (binaries in `<dir>/bin/`),
//! or from `$LOCUST_TOOLS_DIR`. Without them the tests print a skip notice and
//! pass — unless `CI` is set or `LOCUST_REQUIRE_TOOLS=1`, where they fail.
//! Every warning the validator may print is listed (with the reason it stays)
//! in `docs/bundle-validation.md`; an unlisted warning fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use manifests_gen::{CATALOG_PATH, Options, generate, parse_extra_release, workspace_root, write};
use serde_json::Value;

struct Tools {
    opm: PathBuf,
    operator_sdk: PathBuf,
}

fn tools_required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
        || std::env::var("LOCUST_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

fn tools_in(dir: &Path) -> Option<Tools> {
    for bin in [dir.join("bin"), dir.to_owned()] {
        let opm = bin.join("opm");
        let operator_sdk = bin.join("operator-sdk");
        if opm.is_file() && operator_sdk.is_file() {
            return Some(Tools { opm, operator_sdk });
        }
    }
    None
}

/// The tools, or `None` after printing why the test is skipped. Panics when they are required.
fn tools(test: &str) -> Option<Tools> {
    let (found, tried) = if let Ok(dir) = std::env::var("LOCUST_TOOLS_DIR") {
        (tools_in(Path::new(&dir)), format!("LOCUST_TOOLS_DIR={dir}"))
    } else {
        let script = workspace_root().join("olm-tests/tools/build.sh");
        match Command::new("bash")
            .arg(&script)
            .arg("--print-dir")
            .output()
        {
            Ok(out) if out.status.success() => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let dir = stdout.lines().last().unwrap_or_default().trim().to_owned();
                (
                    tools_in(Path::new(&dir)),
                    format!("{} --print-dir -> {dir}", script.display()),
                )
            }
            Ok(out) => (
                None,
                format!(
                    "{} --print-dir failed: {}",
                    script.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ),
            Err(e) => (None, format!("cannot run {}: {e}", script.display())),
        }
    };
    if found.is_none() {
        let msg = format!(
            "{test}: opm/operator-sdk not found ({tried}); build them with olm-tests/tools/build.sh or set LOCUST_TOOLS_DIR"
        );
        if tools_required() {
            panic!("{msg} (required because CI or LOCUST_REQUIRE_TOOLS=1 is set)");
        }
        eprintln!("SKIPPED {msg}");
    }
    found
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Warnings `operator-sdk bundle validate --select-optional suite=operatorframework`
/// prints for this bundle, each explained in docs/bundle-validation.md.
const DOCUMENTED_WARNINGS: &[&str] = &[
    // RBAC on events.k8s.io/events: the validator cannot see that the operator uses events.k8s.io/v1.
    "this bundle is using APIs which were deprecated and removed in v1.25. More info: https://kubernetes.io/docs/reference/using-api/deprecation-guide/#v1-25. Migrate the API(s) for events",
    // The `alpha` channel name (reported only when the validator reads metadata/annotations.yaml).
    "are not following the recommended naming convention: https://olm.operatorframework.io/docs/best-practices/channel-naming",
];

fn sdk_validate(tools: &Tools, bundle: &Path) -> Vec<String> {
    let (ok, stdout, stderr) = run(Command::new(&tools.operator_sdk)
        .args(["bundle", "validate"])
        .arg(bundle)
        .args([
            "--select-optional",
            "suite=operatorframework",
            "-o",
            "json-alpha1",
        ]));
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("unparsable validator output ({e}):\n{stdout}\n{stderr}"));
    let outputs = report["outputs"].as_array().cloned().unwrap_or_default();
    let errors: Vec<&Value> = outputs.iter().filter(|o| o["type"] == "error").collect();
    assert!(
        ok && report["passed"] == true && errors.is_empty(),
        "validation errors: {errors:#?}\n{stderr}"
    );
    let warnings: Vec<String> = outputs
        .iter()
        .filter(|o| o["type"] == "warning")
        .map(|o| o["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    for w in &warnings {
        assert!(
            DOCUMENTED_WARNINGS.iter().any(|d| w.contains(d)),
            "undocumented validator warning (explain it in docs/bundle-validation.md and DOCUMENTED_WARNINGS):\n{w}"
        );
    }
    warnings
}

fn opm_validate(tools: &Tools, catalog_root: &Path) {
    let (ok, stdout, stderr) = run(Command::new(&tools.opm).arg("validate").arg(catalog_root));
    assert!(
        ok,
        "opm validate {}:\n{stdout}\n{stderr}",
        catalog_root.display()
    );
}

/// `opm render` of a bundle directory, with the image reference the catalog uses.
fn opm_render_bundle(tools: &Tools, bundle: &Path, inline: bool) -> Value {
    let mut cmd = Command::new(&tools.opm);
    cmd.arg("render").arg(bundle).args(["-o", "json"]);
    if !inline {
        cmd.arg("--alpha-image-ref-template").arg(format!(
            "{}:v{{{{.Version}}}}",
            manifests_gen::BUNDLE_IMAGE_REPO
        ));
    }
    let (ok, stdout, stderr) = run(&mut cmd);
    assert!(ok, "opm render {}:\n{stderr}", bundle.display());
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("opm render output ({e}):\n{stdout}"))
}

fn catalog_bundle(out: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(out.join(CATALOG_PATH)).unwrap();
    manifests_gen::yaml::documents(&text)
        .unwrap()
        .into_iter()
        .find(|d: &Value| d["schema"] == "olm.bundle" && d["name"] == name)
        .unwrap_or_else(|| panic!("no olm.bundle {name}"))
}

/// The rendered bundle equals the catalog entry, field by field; the
/// `olm.bundle.object` data are compared as exact strings.
fn assert_render_matches(rendered: &Value, catalog: &Value) {
    let name = rendered["name"].as_str().unwrap_or_default();
    for key in ["schema", "name", "package", "image", "relatedImages"] {
        assert_eq!(rendered.get(key), catalog.get(key), "{name}: {key} differs");
    }
    let r = rendered["properties"].as_array().unwrap();
    let c = catalog["properties"].as_array().unwrap();
    assert_eq!(r.len(), c.len(), "{name}: property count");
    for (i, (a, b)) in r.iter().zip(c).enumerate() {
        assert_eq!(a["type"], b["type"], "{name}: property {i} type");
        if a["type"] == "olm.bundle.object" {
            let (da, db) = (
                a["value"]["data"].as_str().unwrap(),
                b["value"]["data"].as_str().unwrap(),
            );
            assert!(
                da == db,
                "{name}: bundle object {i} differs from opm's encoding"
            );
        } else {
            assert_eq!(a["value"], b["value"], "{name}: property {i}");
        }
    }
    assert_eq!(rendered, catalog, "{name}: olm.bundle differs");
}

#[test]
fn committed_bundle_passes_operator_sdk_validation() {
    let Some(tools) = tools("committed_bundle_passes_operator_sdk_validation") else {
        return;
    };
    let warnings = sdk_validate(&tools, &workspace_root().join("bundle"));
    eprintln!("operator-sdk warnings ({}):", warnings.len());
    for w in warnings {
        eprintln!("  {w}");
    }
}

#[test]
fn committed_catalog_is_valid_and_matches_opm_render() {
    let Some(tools) = tools("committed_catalog_is_valid_and_matches_opm_render") else {
        return;
    };
    let root = workspace_root();
    opm_validate(&tools, &root.join("catalog"));
    let rendered = opm_render_bundle(&tools, &root.join("bundle"), false);
    let name = rendered["name"].as_str().unwrap().to_owned();
    assert_render_matches(&rendered, &catalog_bundle(&root, &name));
}

/// Several hypothetical releases (a prerelease in alpha, a promoted release,
/// an alpha-only head, an explicit replaces that skips a bad release): the
/// catalog validates and every generated bundle matches `opm render`.
#[test]
fn hypothetical_histories_validate() {
    let Some(tools) = tools("hypothetical_histories_validate") else {
        return;
    };
    let histories: &[&[&str]] = &[
        &["2.1.0-rc.1:alpha", "2.1.0:alpha,stable", "2.2.0:alpha"],
        &[
            "2.1.0:alpha,stable",
            "2.2.0:alpha,stable",
            "2.3.0:alpha,stable:2.1.0",
        ],
    ];
    for history in histories {
        for inline in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut opts = Options::new(workspace_root());
            opts.out_dir = dir.path().to_owned();
            opts.inline_catalog = inline;
            opts.extra_releases = history
                .iter()
                .map(|s| parse_extra_release(s).unwrap())
                .collect();
            write(&generate(&opts).unwrap(), dir.path()).unwrap();
            opm_validate(&tools, &dir.path().join("catalog"));
            sdk_validate(&tools, &dir.path().join("bundle"));
            let rendered = opm_render_bundle(&tools, &dir.path().join("bundle"), inline);
            let name = rendered["name"].as_str().unwrap().to_owned();
            assert_render_matches(&rendered, &catalog_bundle(dir.path(), &name));
        }
    }
}
