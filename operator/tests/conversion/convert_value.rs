//! convert_value

use super::*;

const V1_YAML: &str = r#"
apiVersion: locust.io/v1
kind: LocustTest
metadata:
  name: demo
  namespace: load
  labels:
    team: perf
spec:
  masterCommandSeed: --locustfile /lotest/src/demo.py --host https://example.com --users 100
  workerCommandSeed: --locustfile /lotest/src/demo.py
  workerReplicas: 3
  image: locustio/locust:2.43.1
  imagePullPolicy: IfNotPresent
  imagePullSecrets: [regcred]
  configMap: demo-files
  labels:
    worker:
      tier: load
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        zone: eu-1
  tolerations:
    - key: dedicated
      operator: Equal
      value: locust
      effect: NoSchedule
"#;

const V2_JSON: &str = r#"{
  "apiVersion": "locust.io/v2",
  "kind": "LocustTest",
  "metadata": {"name": "rich", "namespace": "load", "uid": "1234", "generation": 2},
  "spec": {
    "image": "locustio/locust:2.43.1",
    "master": {
      "command": "--locustfile /lotest/src/demo.py",
      "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}},
      "autostart": false,
      "autoquit": {"enabled": true, "timeout": 30},
      "extraArgs": ["--run-time", "2m"]
    },
    "worker": {"command": "--locustfile /lotest/src/demo.py", "replicas": 4},
    "testFiles": {"configMapRef": "demo-files"},
    "scheduling": {
      "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
      ]}},
      "nodeSelector": {"kubernetes.io/os": "linux"}
    },
    "env": {
      "secretRefs": [{"name": "creds"}],
      "variables": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    },
    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    "volumeMounts": [{"name": "data", "mountPath": "/data", "target": "worker"}],
    "observability": {"openTelemetry": {"enabled": true, "endpoint": "otel:4317"}}
  },
  "status": {"phase": "Running", "expectedWorkers": 4, "connectedWorkers": 4}
}"#;

fn v1_yaml_value() -> Value {
    locust_operator::yaml::from_str(V1_YAML).unwrap()
}

#[test]
fn convert_value_v1_yaml_to_v2() {
    let v2value = convert_value(v1_yaml_value(), V2_API_VERSION).unwrap();
    assert_eq!(v2value["apiVersion"], "locust.io/v2");
    assert_eq!(v2value["kind"], "LocustTest");
    assert_eq!(v2value["metadata"]["name"], "demo");
    assert_eq!(v2value["metadata"]["labels"], json!({"team": "perf"}));
    let spec = &v2value["spec"];
    assert_eq!(
        spec["master"]["command"],
        "--locustfile /lotest/src/demo.py --host https://example.com --users 100"
    );
    assert_eq!(spec["master"]["autostart"], true);
    assert_eq!(
        spec["master"]["autoquit"],
        json!({"enabled": true, "timeout": 60})
    );
    assert_eq!(spec["worker"]["replicas"], 3);
    assert_eq!(spec["worker"]["labels"], json!({"tier": "load"}));
    assert_eq!(spec["imagePullPolicy"], "IfNotPresent");
    assert_eq!(spec["imagePullSecrets"], json!([{"name": "regcred"}]));
    assert_eq!(
        spec["testFiles"],
        json!({"configMapRef": "demo-files", "srcMountPath": "/lotest/src", "libMountPath": "/opt/locust/lib"})
    );
    assert_eq!(
        spec["scheduling"]["affinity"],
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["eu-1"]}]}
        ]}}})
    );
    assert_eq!(spec["scheduling"]["tolerations"][0]["value"], "locust");
    assert!(v2value["metadata"].get("annotations").is_none());

    // And back: the same v1 document, normalised by the typed model.
    let back = convert_value(v2value, V1_API_VERSION).unwrap();
    let original: v1::LocustTest = serde_json::from_value(v1_yaml_value()).unwrap();
    assert_eq!(back, serde_json::to_value(&original).unwrap());
    assert!(back["metadata"].get("annotations").is_none());
}

#[test]
fn convert_value_v2_json_to_v1_and_back() {
    let original: Value = serde_json::from_str(V2_JSON).unwrap();
    let v1value = convert_value(original.clone(), V1_API_VERSION).unwrap();
    assert_eq!(v1value["apiVersion"], "locust.io/v1");
    assert_eq!(v1value["spec"]["workerReplicas"], 4);
    assert_eq!(v1value["spec"]["configMap"], "demo-files");
    assert_eq!(v1value["status"]["phase"], "Running");
    let stored = v1value["metadata"]["annotations"][V2_SPEC_ANNOTATION]
        .as_str()
        .unwrap();
    assert!(stored.contains("podAntiAffinity"));

    let v2value = convert_value(v1value, V2_API_VERSION).unwrap();
    let typed: v2::LocustTest = serde_json::from_value(original).unwrap();
    assert_eq!(v2value, serde_json::to_value(&typed).unwrap());
    assert_eq!(v2value["spec"]["master"]["autostart"], false);
    assert_eq!(v2value["spec"]["volumeMounts"][0]["target"], "worker");
}

#[test]
fn convert_value_same_version_is_a_no_op() {
    let mut value = v1_yaml_value();
    value["spec"]["someFieldTheModelDoesNotKnow"] = json!({"kept": [1, 2, 3]});
    value["spec"]
        .as_object_mut()
        .unwrap()
        .remove("workerReplicas");
    let same = convert_value_with_warnings(value.clone(), V1_API_VERSION).unwrap();
    assert_eq!(same.object, value);
    assert!(same.warnings.is_empty());
    assert_eq!(
        serde_json::to_string(&same.object).unwrap(),
        serde_json::to_string(&value).unwrap()
    );

    let v2value: Value = serde_json::from_str(V2_JSON).unwrap();
    assert_eq!(
        convert_value(v2value.clone(), V2_API_VERSION).unwrap(),
        v2value
    );
}

#[test]
fn convert_value_rejects_unknown_versions() {
    let mut value = v1_yaml_value();
    value["apiVersion"] = json!("locust.io/v3");
    let err = convert_value(value, V2_API_VERSION).unwrap_err();
    assert_eq!(
        err,
        ConversionError::UnknownVersion {
            api_version: "locust.io/v3".into()
        }
    );
    assert_eq!(err.reason(), "UnknownVersion");
    assert!(err.to_string().contains("locust.io/v3"));

    let err = convert_value(v1_yaml_value(), "locust.io/v1beta1").unwrap_err();
    assert_eq!(err.reason(), "UnknownDesiredVersion");
    assert!(err.to_string().contains("locust.io/v1beta1"));

    // An unknown desired version is an error even for a same-version request.
    let mut value = v1_yaml_value();
    value["apiVersion"] = json!("example.com/v1");
    let err = convert_value(value, "example.com/v1").unwrap_err();
    assert_eq!(err.reason(), "UnknownVersion");

    let mut value = v1_yaml_value();
    value.as_object_mut().unwrap().remove("apiVersion");
    let err = convert_value(value, V2_API_VERSION).unwrap_err();
    assert_eq!(err, ConversionError::MissingApiVersion);
    assert_eq!(err.reason(), "MissingApiVersion");
}

#[test]
fn convert_value_rejects_other_kinds() {
    let mut value = v1_yaml_value();
    value["kind"] = json!("ConfigMap");
    let err = convert_value(value.clone(), V2_API_VERSION).unwrap_err();
    assert_eq!(
        err,
        ConversionError::WrongKind {
            found: Some("ConfigMap".into())
        }
    );
    assert_eq!(err.reason(), "WrongKind");
    assert!(err.to_string().contains("ConfigMap"));
    // Even when no conversion would be needed.
    assert!(convert_value(value, V1_API_VERSION).is_err());

    let mut value = v1_yaml_value();
    value.as_object_mut().unwrap().remove("kind");
    let err = convert_value(value, V2_API_VERSION).unwrap_err();
    assert_eq!(err, ConversionError::WrongKind { found: None });
}

#[test]
fn convert_value_names_the_bad_field() {
    let mut value = v1_yaml_value();
    value["spec"].as_object_mut().unwrap().remove("image");
    let err = convert_value(value, V2_API_VERSION).unwrap_err();
    assert_eq!(err.reason(), "InvalidObject");
    let message = err.to_string();
    assert!(message.contains("`image`"), "{message}");
    assert!(message.contains("locust.io/v1"), "{message}");

    let mut value = v1_yaml_value();
    value["spec"]["workerReplicas"] = json!("hunter2");
    let err = convert_value(value, V2_API_VERSION).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("spec.workerReplicas"), "{message}");
    assert!(!message.contains("hunter2"), "{message} leaks the value");
    match err {
        ConversionError::InvalidObject { field, .. } => {
            assert_eq!(field.as_deref(), Some("spec.workerReplicas"))
        }
        other => panic!("unexpected {other:?}"),
    }

    let mut value: Value = serde_json::from_str(V2_JSON).unwrap();
    value["spec"]["env"]["variables"][0]["value"] = json!(12345);
    let err = convert_value(value, V1_API_VERSION).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("spec.env.variables[0].value"), "{message}");
    assert!(!message.contains("12345"), "{message} leaks the value");

    let err = convert_value(
        json!({"apiVersion": "locust.io/v2", "kind": "LocustTest"}),
        V1_API_VERSION,
    )
    .unwrap_err();
    assert!(err.to_string().contains("`metadata`"), "{err}");
}

#[test]
fn convert_value_reports_annotation_warnings() {
    let mut value = v1_yaml_value();
    value["metadata"]["annotations"] = json!({ V2_SPEC_ANNOTATION: "{broken" });
    let converted = convert_value_with_warnings(value.clone(), V2_API_VERSION).unwrap();
    assert_eq!(converted.warnings.len(), 1);
    assert!(converted.object["metadata"].get("annotations").is_none());
    // The plain entry point succeeds too (the warning is logged).
    assert_eq!(
        convert_value(value, V2_API_VERSION).unwrap(),
        converted.object
    );
}
