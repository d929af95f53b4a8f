//! The CRD

use super::*;

#[test]
fn crd_assembles_without_falling_back() {
    let strict = crd::try_crd().unwrap();
    assert_eq!(crd::crd(), strict);
    assert_eq!(crd::crd_without_cel(), crd::try_crd_without_cel().unwrap());
    assert_eq!(
        strict.metadata.name.as_deref(),
        Some("locusttests.locust.io")
    );
    assert!(
        strict.spec.conversion.is_none(),
        "the manifests generator adds conversion"
    );
    let yaml = locust_operator::yaml::to_string(&strict).unwrap();
    assert!(yaml.contains("x-kubernetes-validations"));
}

#[test]
fn crd_names_scope_and_versions() {
    let crd = crd::crd();
    let names = &crd.spec.names;
    assert_eq!(crd.spec.group, "locust.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(names.kind, "LocustTest");
    assert_eq!(names.plural, "locusttests");
    assert_eq!(names.singular.as_deref(), Some("locusttest"));
    assert_eq!(names.list_kind.as_deref(), Some("LocustTestList"));
    assert_eq!(
        names.short_names.as_deref(),
        Some(&["lotest".to_owned()][..])
    );
    assert_eq!(
        names.categories.as_deref(),
        Some(&["locust".to_owned()][..])
    );

    let order: Vec<&str> = crd.spec.versions.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(order, ["v2", "v1"]);
    let v2 = version_of(&crd, "v2");
    assert!(v2.served && v2.storage);
    assert_ne!(v2.deprecated, Some(true));
    assert!(v2.deprecation_warning.is_none());
    let v1 = version_of(&crd, "v1");
    assert!(v1.served && !v1.storage);
    assert_eq!(v1.deprecated, Some(true));
    assert_eq!(
        v1.deprecation_warning.as_deref(),
        Some("locust.io/v1 LocustTest is deprecated, migrate to locust.io/v2")
    );
    for v in [v2, v1] {
        let status = v.subresources.as_ref().and_then(|s| s.status.as_ref());
        assert!(status.is_some(), "{}: status subresource", v.name);
    }
}

#[test]
fn printer_columns() {
    let crd = crd::crd();
    for version in ["v2", "v1"] {
        let cols = version_of(&crd, version)
            .additional_printer_columns
            .clone()
            .unwrap();
        let got: Vec<(&str, &str, &str, Option<i32>)> = cols
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.type_.as_str(),
                    c.json_path.as_str(),
                    c.priority,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Phase", "string", ".status.phase", None),
                ("Workers", "integer", ".status.expectedWorkers", None),
                ("Connected", "integer", ".status.connectedWorkers", None),
                ("RPS", "number", ".status.live.requestsPerSecond", None),
                ("FailRatio", "number", ".status.live.failRatio", None),
                ("Age", "date", ".metadata.creationTimestamp", None),
                ("Image", "string", ".spec.image", Some(1)),
            ],
            "{version}"
        );
    }
}

/// Visits every schema node, with its path (`properties` by name, array items as `[]`,
/// map values as `{}`).
fn walk(schema: &JSONSchemaProps, path: &str, visit: &mut dyn FnMut(&str, &JSONSchemaProps)) {
    visit(path, schema);
    for (name, prop) in schema.properties.iter().flatten() {
        walk(prop, &format!("{path}.{name}"), visit);
    }
    match schema.items.as_ref() {
        Some(JSONSchemaPropsOrArray::Schema(items)) => walk(items, &format!("{path}[]"), visit),
        Some(JSONSchemaPropsOrArray::Schemas(all)) => {
            for items in all {
                walk(items, &format!("{path}[]"), visit);
            }
        }
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = schema.additional_properties.as_ref() {
        walk(values, &format!("{path}{{}}"), visit);
    }
    for sub in [&schema.all_of, &schema.any_of, &schema.one_of]
        .into_iter()
        .flatten()
        .flatten()
    {
        walk(sub, &format!("{path}<sub>"), visit);
    }
}

#[test]
fn every_property_has_a_description() {
    let crd = crd::crd();
    for version in ["v2", "v1"] {
        let schema = schema_of(&crd, version);
        let mut missing = Vec::new();
        let mut count = 0;
        walk(&schema, "", &mut |path, node| {
            for (name, prop) in node.properties.iter().flatten() {
                // Kubernetes forbids a description on the root `metadata`; kubectl
                // explain shows ObjectMeta's there.
                if path.is_empty() && name == "metadata" {
                    continue;
                }
                count += 1;
                if prop
                    .description
                    .as_deref()
                    .is_none_or(|d| d.trim().is_empty())
                {
                    missing.push(format!("{path}.{name}"));
                }
            }
        });
        assert!(
            missing.is_empty(),
            "{version}: properties without description: {missing:#?}"
        );
        assert!(count > 40, "{version}: only {count} properties walked");
    }
    // Descriptions of core Kubernetes types survived the generation.
    let v2 = schema_of(&crd, "v2");
    let pvc = schema_at(
        &v2,
        &[
            "spec",
            "volumes",
            ITEMS,
            "persistentVolumeClaim",
            "claimName",
        ],
    )
    .unwrap();
    assert!(
        pvc.description
            .as_deref()
            .unwrap()
            .contains("PersistentVolumeClaim")
    );
    let mount = schema_at(&v2, &["spec", "volumeMounts", ITEMS, "mountPath"]).unwrap();
    assert!(mount.description.is_some());
}

#[test]
fn schemas_are_structural() {
    let (mut problems, mut int_or_string) = (Vec::new(), Vec::new());
    // Every version's schema, paths prefixed with the version ("v2 .spec…").
    for version in ["v2", "v1"] {
        let root = format!("{version} ");
        walk(
            &schema_of(&crd::crd(), version),
            &root,
            &mut |path, node| {
                if node.any_of.is_some()
                    || node.one_of.is_some()
                    || node.all_of.is_some()
                    || node.not.is_some()
                {
                    problems.push(format!("{path}: anyOf/oneOf/allOf/not"));
                }
                if node.ref_path.is_some() || node.definitions.is_some() {
                    problems.push(format!("{path}: $ref/definitions"));
                }
                if node.pattern.is_some() {
                    // The Rust schema checks do not evaluate patterns.
                    problems.push(format!("{path}: pattern"));
                }
                let ios = node.x_kubernetes_int_or_string == Some(true);
                let preserve = node.x_kubernetes_preserve_unknown_fields == Some(true);
                if ios {
                    int_or_string.push(path.to_owned());
                    if node.type_.is_some() {
                        problems.push(format!("{path}: int-or-string with a type"));
                    }
                } else if node.type_.is_none() && !preserve {
                    problems.push(format!("{path}: no type"));
                }
                if node.properties.is_some()
                    && matches!(
                        node.additional_properties,
                        Some(JSONSchemaPropsOrBool::Schema(_))
                    )
                {
                    problems.push(format!("{path}: properties and additionalProperties"));
                }
            },
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
    for quantity in [
        "v2 .spec.master.resources.limits{}",
        "v2 .spec.master.resources.requests{}",
        "v2 .spec.worker.resources.limits{}",
        "v2 .spec.worker.resources.requests{}",
        "v2 .spec.volumes[].emptyDir.sizeLimit",
    ] {
        assert!(
            int_or_string.iter().any(|p: &String| p == quantity),
            "{quantity} is not int-or-string"
        );
    }
}

#[test]
fn metadata_declares_only_name() {
    let crd = crd::crd();
    for version in ["v2", "v1"] {
        let schema = schema_of(&crd, version);
        let metadata = schema_at(&schema, &["metadata"]).unwrap();
        assert_eq!(metadata.type_.as_deref(), Some("object"));
        assert!(metadata.description.is_none(), "Kubernetes forbids it");
        let keys: Vec<&String> = metadata.properties.as_ref().unwrap().keys().collect();
        assert_eq!(keys, ["name"]);
        let name = schema_at(&schema, &["metadata", "name"]).unwrap();
        assert_eq!(name.type_.as_deref(), Some("string"));
        assert!(name.max_length.is_none() && name.default.is_none());
    }
}

#[test]
fn bounds_are_in_the_v2_schema() {
    let schema = schema_of(&crd::crd(), "v2");
    for (path, bound) in BOUNDS {
        let node = schema_at(&schema, path).unwrap_or_else(|| panic!("{path:?} missing"));
        match bound {
            Bound::MaxItems(n) => {
                assert_eq!(node.type_.as_deref(), Some("array"), "{path:?}");
                assert_eq!(node.max_items, Some(*n), "{path:?}");
            }
            Bound::MaxLength(n) => {
                assert_eq!(node.type_.as_deref(), Some("string"), "{path:?}");
                assert_eq!(node.max_length, Some(*n), "{path:?}");
            }
        }
    }
    let max_items = |p: &[&str]| schema_at(&schema, p).unwrap().max_items;
    assert_eq!(max_items(&["spec", "volumes"]), Some(64));
    assert_eq!(max_items(&["spec", "volumeMounts"]), Some(64));
    assert_eq!(max_items(&["spec", "env", "secretMounts"]), Some(32));
    assert_eq!(max_items(&["spec", "env", "configMapRefs"]), Some(32));
    assert_eq!(max_items(&["spec", "env", "secretRefs"]), Some(32));
}

fn count_validations(schema: &JSONSchemaProps) -> usize {
    let mut n = 0;
    walk(schema, "", &mut |_, node| {
        n += node.x_kubernetes_validations.as_ref().map_or(0, Vec::len)
    });
    n
}

#[test]
fn every_cel_rule_is_in_the_crd_at_its_location() {
    let crd = crd::crd();
    fn check<T>(schema: &JSONSchemaProps, rules: &[Rule<T>]) {
        for rule in rules {
            let node = schema_at(schema, rule.at)
                .unwrap_or_else(|| panic!("{}: no {:?}", rule.id, rule.at));
            let injected = node.x_kubernetes_validations.as_ref().unwrap();
            let found = injected
                .iter()
                .find(|v| v.rule == rule.cel && v.message.as_deref() == Some(rule.message));
            let found = found.unwrap_or_else(|| panic!("{}: CEL not at {:?}", rule.id, rule.at));
            assert_eq!(found, &validation_rule(rule), "{}", rule.id);
            let want_path = (!rule.field_path.is_empty()).then(|| rule.field_path.to_owned());
            assert_eq!(found.field_path, want_path, "{}", rule.id);
            assert_eq!(
                found.reason.as_deref(),
                Some(rule.reason.as_str()),
                "{}",
                rule.id
            );
            assert!(found.reason.as_deref().unwrap().starts_with("FieldValue"));
        }
        assert_eq!(count_validations(schema), rules.len(), "no stray rules");
    }
    check(&schema_of(&crd, "v2"), RULES);
    check(&schema_of(&crd, "v1"), V1_RULES);
    // In rule order at each location.
    let spec = schema_at(&schema_of(&crd, "v2"), &["spec"])
        .unwrap()
        .clone();
    let at_spec: Vec<String> = spec
        .x_kubernetes_validations
        .unwrap()
        .into_iter()
        .map(|v| v.rule)
        .collect();
    let want: Vec<String> = cel_rules_at(&["spec"])
        .iter()
        .map(|r| r.cel.to_owned())
        .collect();
    assert_eq!(at_spec, want);
}

#[test]
fn crd_without_cel_differs_only_by_the_rules() {
    let with = crd::crd();
    let without = crd::crd_without_cel();
    for version in ["v2", "v1"] {
        assert_eq!(
            count_validations(&schema_of(&without, version)),
            0,
            "{version}"
        );
    }
    let mut stripped = serde_json::to_value(&with).unwrap();
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("x-kubernetes-validations");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut stripped);
    assert_eq!(stripped, serde_json::to_value(&without).unwrap());
}

/// How a CEL rule uses a field.
#[derive(Debug, PartialEq)]
enum Use {
    /// A list iterated by `all`/`exists`/`exists_one`.
    Iterated,
    /// Any other read (compared, trimmed, tested).
    Read,
}

/// The schema paths (from the root; [`ITEMS`] for list items) a CEL rule
/// attached at `at` reads, resolving `self` and the comprehension variables.
fn cel_references(at: &[&str], cel: &str) -> Vec<(Vec<String>, Use)> {
    let chars: Vec<char> = cel.chars().collect();
    let mut refs = Vec::new();
    let mut vars: Vec<(String, Vec<String>)> = Vec::new();
    let mut bind_next: Option<Vec<String>> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
        {
            i += 1;
        }
        let chain: Vec<String> = chars[start..i]
            .iter()
            .collect::<String>()
            .split('.')
            .map(str::to_owned)
            .collect();
        if let Some(path) = bind_next.take() {
            vars.push((chain[0].clone(), path));
            continue;
        }
        let is_call = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&'(');
        let (receiver, iterated) = match (is_call, chain.last().map(String::as_str)) {
            (true, Some("all" | "exists" | "exists_one")) => (&chain[..chain.len() - 1], true),
            (true, _) => (&chain[..chain.len() - 1], false),
            (false, _) => (&chain[..], false),
        };
        let Some((head, rest)) = receiver.split_first() else {
            continue;
        };
        let base: Vec<String> = if head == "self" {
            at.iter().map(|s| (*s).to_owned()).collect()
        } else if let Some((_, path)) = vars.iter().find(|(name, _)| name == head) {
            path.clone()
        } else {
            continue;
        };
        let path: Vec<String> = base.into_iter().chain(rest.iter().cloned()).collect();
        if iterated {
            let mut items = path.clone();
            items.push(ITEMS.to_owned());
            bind_next = Some(items);
            refs.push((path, Use::Iterated));
        } else {
            refs.push((path, Use::Read));
        }
    }
    refs
}

/// Why the rules would be too costly for the API server: a referenced field
/// missing from the schema, an iterated list without `maxItems`, or a string
/// read inside a comprehension without `maxLength`.
fn cost_problems<T>(schema: &JSONSchemaProps, rules: &[Rule<T>]) -> Vec<String> {
    let mut problems = Vec::new();
    for rule in rules {
        let refs = cel_references(rule.at, rule.cel);
        let loops = refs.iter().any(|(_, u)| *u == Use::Iterated);
        for (path, usage) in &refs {
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            let Some(node) = schema_at(schema, &segments) else {
                problems.push(format!("{}: {path:?} is not in the schema", rule.id));
                continue;
            };
            if *usage == Use::Iterated && node.max_items.is_none() {
                problems.push(format!("{}: {path:?} has no maxItems", rule.id));
            }
            if loops && node.type_.as_deref() == Some("string") && node.max_length.is_none() {
                problems.push(format!("{}: {path:?} has no maxLength", rule.id));
            }
        }
    }
    problems
}

#[test]
fn cel_references_resolve_self_and_loop_variables() {
    let refs = cel_references(
        &["spec"],
        "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name && v.name != 'x.y'))",
    );
    let paths: Vec<(String, &Use)> = refs.iter().map(|(p, u)| (p.join("."), u)).collect();
    assert_eq!(
        paths,
        [
            ("spec.volumeMounts".to_owned(), &Use::Read),
            ("spec.volumeMounts".to_owned(), &Use::Iterated),
            ("spec.volumes".to_owned(), &Use::Read),
            ("spec.volumes".to_owned(), &Use::Iterated),
            ("spec.volumes.[].name".to_owned(), &Use::Read),
            ("spec.volumeMounts.[].name".to_owned(), &Use::Read),
            ("spec.volumes.[].name".to_owned(), &Use::Read),
        ]
    );
}

#[test]
fn cel_rules_compile_and_are_bounded_for_the_cost_estimator() {
    let crd = crd::crd();
    for version in ["v2", "v1"] {
        let schema = serde_json::to_value(schema_of(&crd, version)).unwrap();
        let compiled = compile_schema(&schema);
        assert!(
            !compiled.has_errors(),
            "{version}: {:?}",
            compiled.compilation_errors()
        );
    }
    let v2 = schema_of(&crd, "v2");
    assert_eq!(cost_problems(&v2, RULES), Vec::<String>::new());
    assert_eq!(
        cost_problems(&schema_of(&crd, "v1"), V1_RULES),
        Vec::<String>::new()
    );

    // Without the bounds the same check fails.
    let mut unbounded = v2.clone();
    walk_mut(&mut unbounded, &mut |node| {
        node.max_items = None;
        node.max_length = None;
    });
    let problems = cost_problems(&unbounded, RULES);
    assert!(
        problems.iter().any(|p| p.contains("has no maxItems")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("has no maxLength")),
        "{problems:?}"
    );
}

fn walk_mut(schema: &mut JSONSchemaProps, visit: &mut dyn FnMut(&mut JSONSchemaProps)) {
    visit(schema);
    for prop in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        walk_mut(prop, visit);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        walk_mut(items, visit);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = schema.additional_properties.as_mut() {
        walk_mut(values, visit);
    }
}

#[test]
fn webhook_conversion_helpers() {
    let ca = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    let mut crd = crd::crd();
    set_webhook_conversion(
        &mut crd,
        ConversionTarget::Service {
            namespace: "locust-system".into(),
            name: "locust-k8s-operator-webhook".into(),
            path: "/convert".into(),
            port: 443,
        },
        Some(ca.clone()),
    );
    let conversion = crd.spec.conversion.as_ref().unwrap();
    assert_eq!(conversion.strategy, "Webhook");
    let webhook = conversion.webhook.as_ref().unwrap();
    assert_eq!(webhook.conversion_review_versions, ["v1"]);
    let client = webhook.client_config.as_ref().unwrap();
    assert_eq!(client.ca_bundle.as_ref().unwrap().0, ca);
    assert!(client.url.is_none());
    let service = client.service.as_ref().unwrap();
    assert_eq!(
        (
            service.namespace.as_str(),
            service.name.as_str(),
            service.path.as_deref(),
            service.port
        ),
        (
            "locust-system",
            "locust-k8s-operator-webhook",
            Some("/convert"),
            Some(443)
        )
    );

    let crd = with_webhook_conversion(
        crd::crd(),
        ConversionTarget::Url("https://127.0.0.1:9443/convert".into()),
        None,
    );
    let client = crd
        .spec
        .conversion
        .unwrap()
        .webhook
        .unwrap()
        .client_config
        .unwrap();
    assert_eq!(
        client.url.as_deref(),
        Some("https://127.0.0.1:9443/convert")
    );
    assert!(client.service.is_none() && client.ca_bundle.is_none());
}
