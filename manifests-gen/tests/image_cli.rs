//! `manifests-gen image ...` twice from the same inputs writes the same
//! bytes: the same printed digest, the same blobs, and the digest the
//! library computes for the same generated files.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_manifests-gen"))
        .args(args)
        .output()
        .expect("running manifests-gen");
    assert!(
        out.status.success(),
        "manifests-gen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Every file of a layout, relative path → bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn bundle_images_repeat_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let first = run(&["image", "bundle", "--layout", a.to_str().unwrap()]);
    let second = run(&["image", "bundle", "--layout", b.to_str().unwrap()]);
    assert_eq!(first, second);
    assert_eq!(files(&a), files(&b));
    let (reference, digest) = first.trim().split_once(' ').unwrap();
    assert!(reference.starts_with(manifests_gen::BUNDLE_IMAGE_REPO));

    let root = manifests_gen::workspace_root();
    let generated = manifests_gen::generate(&manifests_gen::Options::new(&root)).unwrap();
    let image = manifests_gen::images::bundle(&generated).unwrap();
    assert_eq!(image.digest(), digest);
    // An existing layout is never overwritten.
    let again = Command::new(env!("CARGO_BIN_EXE_manifests-gen"))
        .args(["image", "bundle", "--layout", a.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());
}

#[test]
fn operator_images_repeat_and_index_both_architectures() {
    // Any ELF file stands in for the binary: this test's own executable.
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let layout = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    let amd = format!("amd64={exe}");
    let arm = format!("arm64={exe}");
    let one = run(&[
        "image",
        "operator",
        "--binary",
        &amd,
        "--layout",
        &layout("one"),
    ]);
    let one_again = run(&[
        "image",
        "operator",
        "--binary",
        &amd,
        "--layout",
        &layout("one-again"),
    ]);
    assert_eq!(one, one_again);
    let two = run(&[
        "image",
        "operator",
        "--binary",
        &amd,
        "--binary",
        &arm,
        "--layout",
        &layout("two"),
    ]);
    assert_ne!(one, two, "the multi-arch index has a digest of its own");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("two/index.json")).unwrap()).unwrap();
    let top = &index["manifests"][0];
    assert_eq!(top["mediaType"], manifests_gen::oci::MEDIA_INDEX);
    assert_eq!(
        top["digest"].as_str(),
        two.trim().split_once(' ').map(|(_, d)| d)
    );
}
