//! End-to-end tests of the generator through its library API.

use std::path::Path;

use manifests_gen::{
    ANNOTATIONS_PATH, CATALOG_PATH, CRD_PATH, CSV_PATH, DOCKERFILE_PATH, Generated, Options,
    SCHEDULE_CRD_PATH, SCORECARD_PATH, chart, check, generate, monitoring, parse_bundle_digest,
    parse_extra_release, workspace_root, write,
};
use serde_json::Value;

fn opts(out: &Path) -> Options {
    let mut o = Options::new(workspace_root());
    o.out_dir = out.to_owned();
    o
}

/// [`opts`] with hypothetical releases (`VERSION:CHANNELS`, as `--release`
/// takes them) declared after the committed ones.
fn opts_with_releases(out: &Path, releases: &[&str]) -> Options {
    let mut o = opts(out);
    o.extra_releases = releases
        .iter()
        .map(|r| parse_extra_release(r).unwrap())
        .collect();
    o
}

/// What `generate` makes, into an empty directory, with `releases` (see
/// [`opts_with_releases`]).
fn generate_with_releases(releases: &[&str]) -> Generated {
    let dir = tempfile::tempdir().unwrap();
    generate(&opts_with_releases(dir.path(), releases)).unwrap()
}

/// The entries of channel `name` as (version, version it replaces).
fn entries<'a>(docs: &'a [Value], name: &str) -> Vec<(&'a str, Option<&'a str>)> {
    let version = |v: &'a Value| {
        v.as_str()
            .map(|n| n.strip_prefix("locust-k8s-operator.v").unwrap())
    };
    channel(docs, name)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (version(&e["name"]).unwrap(), version(&e["replaces"])))
        .collect()
}

fn catalog_docs(text: &str) -> Vec<Value> {
    manifests_gen::yaml::documents(text).unwrap()
}

fn channel<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["schema"] == "olm.channel" && d["name"] == name)
        .unwrap_or_else(|| panic!("no channel {name}"))
}

#[test]
fn generates_every_file_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let a = generate(&opts(dir.path())).unwrap();
    let b = generate(&opts(dir.path())).unwrap();
    assert_eq!(a, b);
    let paths: Vec<&str> = a.files.keys().map(String::as_str).collect();
    let mut expected = vec![
        ANNOTATIONS_PATH,
        CRD_PATH,
        SCHEDULE_CRD_PATH,
        CSV_PATH,
        SCORECARD_PATH,
        DOCKERFILE_PATH,
        CATALOG_PATH,
        monitoring::SERVICE_PATH,
        monitoring::READER_ROLE_PATH,
        monitoring::SERVICE_MONITOR_PATH,
        chart::INSTALL_PATH,
        chart::VALUES_DOC_PATH,
    ];
    let chart_files: Vec<String> = [
        ".helmignore",
        "Chart.yaml",
        "README.md",
        "values.yaml",
        "values.schema.json",
        "templates/_helpers.tpl",
        "templates/NOTES.txt",
        "templates/crd.yaml",
        "templates/crd-locustschedules.yaml",
        "templates/deployment.yaml",
        "templates/serviceaccount.yaml",
        "templates/clusterrole.yaml",
        "templates/clusterrolebinding.yaml",
        "templates/role.yaml",
        "templates/rolebinding.yaml",
        "templates/webhook-service.yaml",
        "templates/validatingwebhookconfiguration.yaml",
        "templates/metrics-service.yaml",
        "templates/metrics-reader-clusterrole.yaml",
        "templates/servicemonitor.yaml",
        "templates/poddisruptionbudget.yaml",
        "templates/certmanager-issuer.yaml",
        "templates/certmanager-certificate.yaml",
        "templates/otel-collector-configmap.yaml",
        "templates/otel-collector-deployment.yaml",
        "templates/otel-collector-service.yaml",
    ]
    .iter()
    .map(|f| format!("{}/{f}", chart::CHART_DIR))
    .collect();
    expected.extend(chart_files.iter().map(String::as_str));
    expected.sort();
    assert_eq!(paths, expected);

    // Writing, then regenerating against the written catalog, changes nothing.
    write(&a, dir.path()).unwrap();
    let c = generate(&opts(dir.path())).unwrap();
    assert_eq!(a, c);
}

#[test]
fn check_is_clean_after_generate_and_fails_after_one_byte_changes() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path());
    let generated = generate(&o).unwrap();
    let before = check(&generated, dir.path()).unwrap();
    assert_eq!(before.missing.len(), generated.files.len());
    assert!(!before.is_clean());

    write(&generated, dir.path()).unwrap();
    let report = check(&generate(&o).unwrap(), dir.path()).unwrap();
    assert!(report.is_clean(), "{report}");

    // Flip one byte of the CSV.
    let csv = dir.path().join(CSV_PATH);
    let mut bytes = std::fs::read(&csv).unwrap();
    let at = bytes.iter().position(|b| *b == b'2').unwrap();
    bytes[at] = b'3';
    std::fs::write(&csv, bytes).unwrap();
    let report = check(&generate(&o).unwrap(), dir.path()).unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.changed.len(), 1);
    let (path, diff) = &report.changed[0];
    assert_eq!(path, CSV_PATH);
    assert!(
        diff.starts_with(&format!("--- a/{CSV_PATH}\n+++ b/{CSV_PATH}\n")),
        "{diff}"
    );
    assert!(
        diff.lines().any(|l| l.starts_with('-') && l.contains('3')),
        "{diff}"
    );

    // A stray manifest is reported, and removed by the next write.
    write(&generate(&o).unwrap(), dir.path()).unwrap();
    let stray = dir.path().join("bundle/manifests/extra_v1_service.yaml");
    std::fs::write(&stray, "kind: Service\n").unwrap();
    let report = check(&generate(&o).unwrap(), dir.path()).unwrap();
    assert_eq!(
        report.stray,
        vec!["bundle/manifests/extra_v1_service.yaml".to_owned()]
    );
    assert!(report.to_string().contains("stray"));
    let removed = write(&generate(&o).unwrap(), dir.path()).unwrap();
    assert_eq!(
        removed,
        vec!["bundle/manifests/extra_v1_service.yaml".to_owned()]
    );
    assert!(!stray.exists());
    assert!(
        check(&generate(&o).unwrap(), dir.path())
            .unwrap()
            .is_clean()
    );
}

/// The committed bundle/, catalog/ and bundle.Dockerfile are what the code generates.
#[test]
fn committed_outputs_are_up_to_date() {
    let root = workspace_root();
    let report = check(&generate(&Options::new(&root)).unwrap(), &root).unwrap();
    assert!(
        report.is_clean(),
        "run `cargo run -p manifests-gen -- generate`:\n{report}"
    );
}

#[test]
fn hypothetical_next_releases() {
    let g = generate_with_releases(&["3.1.0-rc.1:alpha", "3.1.0:alpha,stable", "3.2.0:alpha"]);

    // The bundle is the highest release: 3.2.0, alpha only.
    let csv: Value = manifests_gen::yaml::from_str(g.text(CSV_PATH).unwrap()).unwrap();
    assert_eq!(csv["metadata"]["name"], "locust-k8s-operator.v3.2.0");
    assert_eq!(csv["spec"]["replaces"], "locust-k8s-operator.v3.1.0");
    assert_eq!(csv["spec"]["maturity"], "alpha");
    assert_eq!(csv["metadata"]["annotations"]["olm.skipRange"], "<3.2.0");
    assert_eq!(
        csv["spec"]["install"]["spec"]["deployments"][0]["spec"]["template"]["spec"]["containers"]
            [0]["image"],
        "ghcr.io/abdelrhmanhamouda/locust-k8s-operator:3.2.0"
    );
    assert!(
        g.text(ANNOTATIONS_PATH)
            .unwrap()
            .contains("operators.operatorframework.io.bundle.channels.v1: alpha\n")
    );
    assert!(
        g.text(DOCKERFILE_PATH)
            .unwrap()
            .contains("LABEL operators.operatorframework.io.bundle.channels.v1=alpha\n")
    );

    let docs = catalog_docs(g.text(CATALOG_PATH).unwrap());
    assert_eq!(
        entries(&docs, "alpha"),
        [
            ("3.0.0", None),
            ("3.1.0-rc.1", Some("3.0.0")),
            ("3.1.0", Some("3.1.0-rc.1")),
            ("3.2.0", Some("3.1.0")),
        ]
    );
    assert_eq!(
        entries(&docs, "stable"),
        [("3.0.0", None), ("3.1.0", Some("3.0.0"))]
    );
    let bundles: Vec<&str> = docs
        .iter()
        .filter(|d| d["schema"] == "olm.bundle")
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(bundles.len(), 4);
    for d in docs.iter().filter(|d| d["schema"] == "olm.bundle") {
        let version = d["name"]
            .as_str()
            .unwrap()
            .trim_start_matches("locust-k8s-operator.v");
        assert_eq!(
            d["image"],
            format!("ghcr.io/abdelrhmanhamouda/locust-k8s-operator-bundle:v{version}")
        );
        let props = d["properties"].as_array().unwrap();
        assert!(
            props
                .iter()
                .any(|p| p["type"] == "olm.package" && p["value"]["version"] == version)
        );
        assert_eq!(props.iter().filter(|p| p["type"] == "olm.gvk").count(), 3);
        assert_eq!(
            props
                .iter()
                .filter(|p| p["type"] == "olm.bundle.object")
                .count(),
            5,
            "2 CRDs, CSV, metrics Service, metrics-reader ClusterRole"
        );
    }
    let package = docs.iter().find(|d| d["schema"] == "olm.package").unwrap();
    assert_eq!(package["defaultChannel"], "stable");
}

#[test]
fn csv_edges_agree_with_the_catalog() {
    let g = generate_with_releases(&["3.1.0:alpha", "3.2.0:alpha,stable"]);
    let csv: Value = manifests_gen::yaml::from_str(g.text(CSV_PATH).unwrap()).unwrap();
    // Primary channel stable: replaces 3.0.0; the alpha predecessor 3.1.0 is skipped.
    assert_eq!(csv["spec"]["replaces"], "locust-k8s-operator.v3.0.0");
    assert_eq!(
        csv["spec"]["skips"],
        serde_json::json!(["locust-k8s-operator.v3.1.0"])
    );
    let docs = catalog_docs(g.text(CATALOG_PATH).unwrap());
    let mut allowed: Vec<&str> = vec![csv["spec"]["replaces"].as_str().unwrap()];
    allowed.extend(
        csv["spec"]["skips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap()),
    );
    for ch in ["alpha", "stable"] {
        let entry = channel(&docs, ch)["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "locust-k8s-operator.v3.2.0")
            .unwrap()
            .clone();
        assert!(
            allowed.contains(&entry["replaces"].as_str().unwrap()),
            "{ch}: {entry}"
        );
        assert_eq!(
            entry["skipRange"],
            csv["metadata"]["annotations"]["olm.skipRange"]
        );
    }
}

#[test]
fn older_catalog_entries_are_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path());
    write(&generate(&o).unwrap(), dir.path()).unwrap();
    // Pretend the published 3.0.0 entry differs from what today's code would produce.
    let path = dir.path().join(CATALOG_PATH);
    let text = std::fs::read_to_string(&path).unwrap();
    let marked = text.replace(
        "image: ghcr.io/abdelrhmanhamouda/locust-k8s-operator-bundle:v3.0.0",
        "image: registry.example/published-bundle:v3.0.0",
    );
    assert_ne!(text, marked);
    std::fs::write(&path, &marked).unwrap();

    // Generating 3.0.0 itself regenerates its entry...
    let same = generate(&o).unwrap();
    assert!(
        !same
            .text(CATALOG_PATH)
            .unwrap()
            .contains("registry.example")
    );

    // ...but once 3.1.0 is the bundle, the 3.0.0 entry is kept as committed.
    let g = generate(&opts_with_releases(dir.path(), &["3.1.0:alpha,stable"])).unwrap();
    let docs = catalog_docs(g.text(CATALOG_PATH).unwrap());
    let old = docs
        .iter()
        .find(|d| d["name"] == "locust-k8s-operator.v3.0.0")
        .unwrap();
    assert_eq!(old["image"], "registry.example/published-bundle:v3.0.0");
}

#[test]
fn inline_catalog_has_no_bundle_images() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.inline_catalog = true;
    let g = generate(&o).unwrap();
    let docs = catalog_docs(g.text(CATALOG_PATH).unwrap());
    let bundle = docs.iter().find(|d| d["schema"] == "olm.bundle").unwrap();
    assert_eq!(bundle["image"], "");
    assert!(
        bundle["relatedImages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|ri| ri["name"] != "")
    );
    // The bundle directory itself is unaffected.
    let normal = generate(&opts(dir.path())).unwrap();
    assert_eq!(g.get(CSV_PATH), normal.get(CSV_PATH));
}

/// `--bundle-digest`: the catalog names exactly those bundles by digest, in
/// `image` and in the related image that repeats it; the bundle directory
/// and the other entries keep their tags.
#[test]
fn published_bundles_are_pinned_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let mut o = opts_with_releases(dir.path(), &["3.1.0:alpha"]);
    let tags = generate(&o).unwrap();
    let (version, d) = parse_bundle_digest(&format!("3.1.0={digest}")).unwrap();
    o.bundle_digests.insert(version, d);
    let pinned = generate(&o).unwrap();
    assert_eq!(pinned.get(CSV_PATH), tags.get(CSV_PATH));
    let docs = catalog_docs(pinned.text(CATALOG_PATH).unwrap());
    let bundle = |name: &str| docs.iter().find(|d| d["name"] == name).unwrap();
    let by_digest = format!("ghcr.io/abdelrhmanhamouda/locust-k8s-operator-bundle@{digest}");
    let new = bundle("locust-k8s-operator.v3.1.0");
    assert_eq!(new["image"], by_digest.as_str());
    let related: Vec<&str> = new["relatedImages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ri| ri["image"].as_str().unwrap())
        .collect();
    assert!(related.contains(&by_digest.as_str()), "{related:?}");
    assert!(
        !related.iter().any(|i| i.ends_with("-bundle:v3.1.0")),
        "{related:?}"
    );
    let mut sorted = related.clone();
    sorted.sort();
    assert_eq!(related, sorted, "related images stay sorted");
    assert_eq!(
        bundle("locust-k8s-operator.v3.0.0")["image"],
        "ghcr.io/abdelrhmanhamouda/locust-k8s-operator-bundle:v3.0.0"
    );

    for bad in [
        "3.1.0",
        "3.1.0=sha256:abc",
        "3.1.0=sha512:0123",
        &format!("3.1.0=sha256:{}", "0123456789ABCDEF".repeat(4)),
        &format!("x=sha256:{}", "0123456789abcdef".repeat(4)),
    ] {
        assert_eq!(
            parse_bundle_digest(bad).unwrap_err().reason(),
            if bad.starts_with('x') {
                "InvalidRelease"
            } else {
                "InvalidOption"
            },
            "{bad}"
        );
    }
}

#[test]
fn options_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.version = Some(semver::Version::new(9, 9, 9));
    let err = generate(&o).unwrap_err();
    assert_eq!(err.reason(), "InvalidOption");
    o.channels = Some(vec!["alpha".to_owned()]);
    let g = generate(&o).unwrap();
    assert!(
        g.text(CSV_PATH)
            .unwrap()
            .contains("name: locust-k8s-operator.v9.9.9")
    );

    let mut bad_default = opts(dir.path());
    bad_default.default_channel = "fast".to_owned();
    assert_eq!(
        generate(&bad_default).unwrap_err().reason(),
        "InvalidOption"
    );

    assert!(parse_extra_release("3.1.0").is_err());
    assert!(parse_extra_release("3.1.0:Alpha").is_err());
    assert!(parse_extra_release("3.1.0:alpha:3.0.0:x").is_err());
    let mut dup = opts(dir.path());
    dup.extra_releases = vec![parse_extra_release("3.0.0:alpha").unwrap()];
    assert_eq!(generate(&dup).unwrap_err().reason(), "InvalidRelease");

    // --image applies to the generated bundle only, not to older releases in the catalog.
    let mut image = opts(dir.path());
    image.image = Some("registry.example/op:dev".to_owned());
    image.extra_releases = vec![parse_extra_release("3.1.0:alpha").unwrap()];
    let g = generate(&image).unwrap();
    let csv = g.text(CSV_PATH).unwrap();
    assert!(csv.contains("image: registry.example/op:dev"));
    assert!(csv.contains("containerImage: registry.example/op:dev"));
    let docs = catalog_docs(g.text(CATALOG_PATH).unwrap());
    let images = |name: &str| -> Vec<String> {
        let doc = docs.iter().find(|d| d["name"] == name).unwrap();
        doc["relatedImages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ri| ri["image"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(images("locust-k8s-operator.v3.1.0").contains(&"registry.example/op:dev".to_owned()));
    let old = images("locust-k8s-operator.v3.0.0");
    assert!(old.contains(&"ghcr.io/abdelrhmanhamouda/locust-k8s-operator:3.0.0".to_owned()));
    assert!(!old.contains(&"registry.example/op:dev".to_owned()));
}

/// The binary: `generate` writes, `check` exits 0 when clean and 1 with a diff otherwise.
#[test]
fn cli_generate_then_check() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_manifests-gen");
    let out = dir.path().to_str().unwrap();
    let run = |args: &[&str]| std::process::Command::new(bin).args(args).output().unwrap();

    let generated = run(&[
        "generate",
        "--out-dir",
        out,
        "--extra-release",
        "3.1.0:alpha",
    ]);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let csv = std::fs::read_to_string(dir.path().join(CSV_PATH)).unwrap();
    assert!(csv.contains("name: locust-k8s-operator.v3.1.0\n"));

    let clean = run(&["check", "--out-dir", out, "--extra-release", "3.1.0:alpha"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );

    // Without the extra release the expected output differs: exit 1 and a unified diff.
    let stale = run(&["check", "--out-dir", out]);
    assert_eq!(stale.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&stale.stdout);
    assert!(stdout.contains(&format!("--- a/{CSV_PATH}")), "{stdout}");
    assert!(
        stdout.contains("-  name: locust-k8s-operator.v3.1.0"),
        "{stdout}"
    );

    // Bad input: exit 2 with the reason.
    let bad = run(&["check", "--out-dir", out, "--extra-release", "nonsense"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("InvalidOption"));
}
