//! One accepted and one rejected case per rule

use super::*;

macro_rules! rule_cases {
    ($( $name:ident => $id:literal { accept: $accept:expr, reject: $reject:expr $(,)? } )*) => {
        /// `(rule id, accepted object, rejected object)` of every case below.
        fn all_cases() -> Vec<(&'static str, Value, Value)> {
            vec![$(($id, $accept, $reject)),*]
        }
        $(
            #[test]
            fn $name() {
                check_case($id, $accept, $reject);
            }
        )*
    };
}

rule_cases! {
    name_length => "name-length" {
        accept: edit(base(), |v| v["metadata"]["name"] = json!("a".repeat(56))),
        reject: edit(base(), |v| v["metadata"]["name"] = json!("a".repeat(57))),
    }
    image_required => "image-required" {
        accept: base(),
        reject: edit(base(), |v| v["spec"]["image"] = json!("  ")),
    }
    master_command_required => "master-command-required" {
        accept: edit(base(), |v| v["spec"]["master"]["command"] = json!("--locustfile /lotest/src/a.py")),
        reject: edit(base(), |v| v["spec"]["master"]["command"] = json!(" \t ")),
    }
    worker_command_required => "worker-command-required" {
        accept: base(),
        reject: edit(base(), |v| v["spec"]["worker"]["command"] = json!("")),
    }
    otel_endpoint_required => "otel-endpoint-required" {
        accept: edit(base(), |v| v["spec"]["observability"] = json!({"openTelemetry": {"enabled": false}})),
        reject: edit(base(), |v| v["spec"]["observability"] = json!({"openTelemetry": {"enabled": true, "endpoint": " "}})),
    }
    volume_mount_unknown_volume => "volume-mount-unknown-volume" {
        accept: full(),
        reject: edit(full(), |v| v["spec"]["volumeMounts"][1]["name"] = json!("missing")),
    }
    volume_names_unique => "volume-names-unique" {
        accept: full(),
        reject: edit(full(), |v| {
            v["spec"]["volumes"].as_array_mut().unwrap().push(json!({"name": "results", "emptyDir": {}}));
        }),
    }
    volume_names_reserved => "volume-names-reserved" {
        // Near misses of the reserved names are fine.
        accept: edit(full(), |v| {
            v["spec"]["volumes"] = json!([
                {"name": "results", "emptyDir": {}},
                {"name": "shared", "emptyDir": {}},
                {"name": "locust-secret-", "emptyDir": {}},
                {"name": "locust-secret-1a", "emptyDir": {}},
                {"name": "locust-srcs", "emptyDir": {}}
            ]);
        }),
        reject: edit(full(), |v| {
            v["spec"]["volumes"] = json!([
                {"name": "results", "emptyDir": {}},
                {"name": "shared", "emptyDir": {}},
                {"name": "locust-secret-12", "emptyDir": {}}
            ]);
        }),
    }
    volume_mount_path_conflict => "volume-mount-path-conflict" {
        // The lib path is free while no lib ConfigMap is mounted there, and a
        // master-only mount and a worker-only mount (two containers) may nest.
        accept: edit(full(), |v| {
            v["spec"]["testFiles"] = json!({"configMapRef": "tests"});
            v["spec"]["volumeMounts"][0]["mountPath"] = json!("/opt/locust/lib");
            v["spec"]["volumeMounts"][0]["target"] = json!("master");
            v["spec"]["volumeMounts"][1]["mountPath"] = json!("/opt/locust/lib/shared");
        }),
        // The worker-only /shared moved inside /results, which the workers mount too.
        reject: edit(full(), |v| v["spec"]["volumeMounts"][1]["mountPath"] = json!("/results/shared")),
    }
    secret_mount_path_conflict => "secret-mount-path-conflict" {
        // Siblings and lookalikes of the test files' paths are free.
        accept: edit(full(), |v| {
            v["spec"]["env"]["secretMounts"] = json!([
                {"name": "a", "mountPath": "/lotest/srcs"}, {"name": "b", "mountPath": "/opt/locust/library"},
                {"name": "c", "mountPath": "/etc/a"}, {"name": "d", "mountPath": "/etc/ab/"}
            ]);
        }),
        // Over the parent of the default srcMountPath.
        reject: edit(full(), |v| v["spec"]["env"]["secretMounts"][0]["mountPath"] = json!("/lotest/")),
    }
    test_files_mount_path_conflict => "test-files-mount-path-conflict" {
        accept: edit(base(), |v| {
            v["spec"]["testFiles"] = json!({"configMapRef": "tests", "srcMountPath": "/lotest", "libMountPath": "/lotest/lib"});
        }),
        reject: edit(base(), |v| {
            v["spec"]["testFiles"] = json!({
                "configMapRef": "tests", "libConfigMapRef": "lib",
                "srcMountPath": "/lotest", "libMountPath": "/lotest/lib"
            });
        }),
    }
    src_mount_path_absolute => "src-mount-path-absolute" {
        accept: edit(base(), |v| v["spec"]["testFiles"] = json!({"configMapRef": "tests", "srcMountPath": "/mnt/tests"})),
        reject: edit(base(), |v| v["spec"]["testFiles"] = json!({"configMapRef": "tests", "srcMountPath": "lotest/src"})),
    }
    runtime_class_name => "runtime-class-name" {
        // "" opts out of the operator's default; dotted names and long parts are names.
        accept: edit(base(), |v| v["spec"]["scheduling"] = json!({"runtimeClassName": format!("kata.{}", "a".repeat(70))})),
        reject: edit(base(), |v| v["spec"]["scheduling"] = json!({"runtimeClassName": "gVisor_Sandbox"})),
    }
    lib_mount_path_absolute => "lib-mount-path-absolute" {
        accept: edit(base(), |v| v["spec"]["testFiles"] = json!({"libConfigMapRef": "lib", "libMountPath": "/mnt/lib"})),
        reject: edit(base(), |v| v["spec"]["testFiles"] = json!({"libConfigMapRef": "lib", "libMountPath": "lib"})),
    }
    secret_mount_paths_absolute => "secret-mount-paths-absolute" {
        accept: full(),
        reject: edit(full(), |v| v["spec"]["env"]["secretMounts"][0]["mountPath"] = json!("etc/certs")),
    }
    volume_mount_paths_absolute => "volume-mount-paths-absolute" {
        accept: full(),
        reject: edit(full(), |v| v["spec"]["volumeMounts"][1]["mountPath"] = json!("shared")),
    }
    output_paths_on_master_volume => "output-paths-on-master-volume" {
        accept: edit(full(), |v| v["spec"]["output"] = json!({
            "htmlReport": {"enabled": true, "path": "/results/report.html"},
            "jsonFile": {"enabled": false, "path": "/shared/not-written"},
            "csv": {"enabled": true, "prefix": "/results/run"}
        })),
        // `/shared` is mounted on the workers only.
        reject: edit(full(), |v| v["spec"]["output"] = json!({
            "htmlReport": {"enabled": true, "path": "/results/report.html"},
            "jsonFile": {"enabled": true, "path": "/shared/stats"}
        })),
    }
    master_command_shell_syntax => "master-command-shell-syntax" {
        accept: edit(base(), |v| v["spec"]["master"]["command"] = json!("locust -f '/lotest/src/my file.py' # comment")),
        reject: edit(base(), |v| v["spec"]["master"]["command"] = json!("locust -f \"/lotest/src/my file.py")),
    }
    worker_command_shell_syntax => "worker-command-shell-syntax" {
        accept: edit(base(), |v| v["spec"]["worker"]["command"] = json!("locust -f \"/lotest/src/my file.py\"")),
        // Splits into no word at all: everything is a comment.
        reject: edit(base(), |v| v["spec"]["worker"]["command"] = json!("# locust -f x.py")),
    }
    v1_name_length => "name-length" {
        accept: edit(base_v1(), |v| v["metadata"]["name"] = json!("b".repeat(56))),
        reject: edit(base_v1(), |v| v["metadata"]["name"] = json!("b".repeat(60))),
    }
    v1_image_required => "image-required" {
        accept: base_v1(),
        reject: edit(base_v1(), |v| v["spec"]["image"] = json!("")),
    }
    v1_master_command_seed_required => "master-command-seed-required" {
        accept: base_v1(),
        reject: edit(base_v1(), |v| v["spec"]["masterCommandSeed"] = json!("\n")),
    }
    v1_worker_command_seed_required => "worker-command-seed-required" {
        accept: base_v1(),
        reject: edit(base_v1(), |v| v["spec"]["workerCommandSeed"] = json!("  ")),
    }
    v1_master_command_seed_shell_syntax => "master-command-seed-shell-syntax" {
        accept: base_v1(),
        reject: edit(base_v1(), |v| v["spec"]["masterCommandSeed"] = json!("--locustfile 'demo.py")),
    }
    v1_worker_command_seed_shell_syntax => "worker-command-seed-shell-syntax" {
        accept: base_v1(),
        reject: edit(base_v1(), |v| v["spec"]["workerCommandSeed"] = json!("--locustfile \"demo.py")),
    }
}

#[test]
fn every_rule_has_a_case() {
    let cases = all_cases();
    let covered: BTreeSet<(bool, &str)> = cases
        .iter()
        .map(|(id, _, rejected)| (is_v1(rejected), *id))
        .collect();
    assert_eq!(covered.len(), cases.len(), "one case per rule and version");
    let v2 = RULES
        .iter()
        .map(|r| r.id)
        .chain(WEBHOOK_RULES.iter().map(|r| r.id))
        .map(|id| (false, id));
    let v1 = V1_RULES
        .iter()
        .map(|r| r.id)
        .chain(V1_WEBHOOK_RULES.iter().map(|r| r.id))
        .map(|id| (true, id));
    let all: BTreeSet<(bool, &str)> = v2.chain(v1).collect();
    assert_eq!(covered, all);
}

#[test]
fn rule_ids_are_unique_kebab_case() {
    fn check(ids: &[&str]) {
        let unique: BTreeSet<&&str> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate ids in {ids:?}");
        for id in ids {
            assert!(
                !id.is_empty()
                    && !id.starts_with('-')
                    && !id.ends_with('-')
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{id} is not kebab-case"
            );
        }
    }
    let v2: Vec<&str> = RULES
        .iter()
        .map(|r| r.id)
        .chain(WEBHOOK_RULES.iter().map(|r| r.id))
        .collect();
    let v1: Vec<&str> = V1_RULES
        .iter()
        .map(|r| r.id)
        .chain(V1_WEBHOOK_RULES.iter().map(|r| r.id))
        .collect();
    check(&v2);
    check(&v1);
}

#[test]
fn rule_field_is_at_joined_with_field_path() {
    fn expected_field(at: &[&str], field_path: &str) -> String {
        if at.is_empty() {
            field_path.trim_start_matches('.').to_owned()
        } else {
            format!("{}{}", at.join("."), field_path)
        }
    }
    fn check<T>(rules: &[Rule<T>]) {
        for r in rules {
            assert!(
                r.field_path.is_empty() || r.field_path.starts_with('.'),
                "{}: fieldPath must start with '.'",
                r.id
            );
            assert_eq!(r.field, expected_field(r.at, r.field_path), "{}", r.id);
        }
    }
    check(RULES);
    check(V1_RULES);
}

#[test]
fn messages_name_their_field_and_fit_kubernetes() {
    fn check(id: &str, field: &str, message: &str) {
        let leaf = field.rsplit('.').next().unwrap();
        assert!(message.contains(leaf), "{id}: message does not name {leaf}");
        assert!(
            !message.contains('\n') && !message.contains('\r'),
            "{id}: line break"
        );
        assert!(
            message.contains(';') || message.contains(':'),
            "{id}: no fix given"
        );
    }
    for r in RULES {
        check(r.id, r.field, r.message);
    }
    for r in V1_RULES {
        check(r.id, r.field, r.message);
    }
    for r in WEBHOOK_RULES {
        check(r.id, r.field, r.message);
    }
    for r in V1_WEBHOOK_RULES {
        check(r.id, r.field, r.message);
    }
}

#[test]
fn cel_rules_at_lists_the_rules_of_a_location() {
    let spec = cel_rules_at(&["spec"]);
    let ids: Vec<&str> = spec.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        [
            "volume-mount-unknown-volume",
            "volume-mount-path-conflict",
            "secret-mount-path-conflict",
            "output-paths-on-master-volume"
        ]
    );
    assert_eq!(
        cel_rules_at(&[]).iter().map(|r| r.id).collect::<Vec<_>>(),
        ["name-length"]
    );
    assert!(cel_rules_at(&["spec", "nowhere"]).is_empty());
    assert_eq!(
        v1_cel_rules_at(&["spec", "masterCommandSeed"])
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        ["master-command-seed-required"]
    );
    let total: usize = RULES
        .iter()
        .map(|r| r.at)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|at| cel_rules_at(at).len())
        .sum();
    assert_eq!(total, RULES.len());
}

#[test]
fn the_runtime_class_rule_spells_the_name_syntax_of_the_dns_module() {
    use locust_operator::dns::{MAX_SUBDOMAIN, SUBDOMAIN_PATTERN, is_dns1123_subdomain};
    let rule = RULES.iter().find(|r| r.id == "runtime-class-name").unwrap();
    assert!(
        rule.cel.contains(&format!("'{SUBDOMAIN_PATTERN}'")),
        "{}",
        rule.cel
    );
    assert!(
        rule.cel
            .contains(&format!("size(self) <= {MAX_SUBDOMAIN} ")),
        "{}",
        rule.cel
    );
    // The CEL evaluator and the Rust mirror agree name by name, "" included.
    let long_part = format!("{}.io", "b".repeat(100));
    let too_long = "a".repeat(254);
    for name in [
        "",
        "gvisor",
        "kata.fc",
        "a",
        long_part.as_str(),
        "-gvisor",
        "gvisor.",
        "Kata",
        "run_sc",
        "a..b",
        " gvisor",
        too_long.as_str(),
    ] {
        let doc = edit(base(), |v| {
            v["spec"]["scheduling"] = json!({"runtimeClassName": name})
        });
        let cel_ok = !cel_violations(&doc)
            .iter()
            .any(|(field, _)| field == "spec.scheduling.runtimeClassName");
        let rust_ok = name.is_empty() || is_dns1123_subdomain(name);
        assert_eq!(cel_ok, rust_ok, "{name:?}");
        assert_eq!(typed_violations(&doc).is_empty(), rust_ok, "{name:?}");
    }
}
