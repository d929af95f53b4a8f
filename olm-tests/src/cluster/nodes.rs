//! The fake Nodes kwok manages.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

/// Annotation kwok selects the nodes it manages by (`--manage-nodes-with-annotation-selector`).
pub const KWOK_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";
/// Value of [`KWOK_NODE_ANNOTATION`].
pub const KWOK_NODE_ANNOTATION_VALUE: &str = "fake";
/// Label carried by every fake node (`type=kwok`).
pub const KWOK_NODE_LABEL: (&str, &str) = ("type", "kwok");

/// Capacity of one fake node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCapacity {
    /// CPU quantity, e.g. `"32"`.
    pub cpu: String,
    /// Memory quantity, e.g. `"256Gi"`.
    pub memory: String,
    /// Maximum pod count, e.g. `"250"`.
    pub pods: String,
}

impl Default for NodeCapacity {
    fn default() -> Self {
        Self {
            cpu: "32".into(),
            memory: "256Gi".into(),
            pods: "250".into(),
        }
    }
}

/// The name of fake node number `index`.
pub fn node_name(index: usize) -> String {
    format!("kwok-node-{index}")
}

/// A fake node object as the harness creates it: kwok fills in conditions,
/// addresses and node info, and keeps its Lease renewed.
pub fn fake_node(name: &str, capacity: &NodeCapacity) -> Node {
    let resources: BTreeMap<String, Quantity> = [
        ("cpu", &capacity.cpu),
        ("memory", &capacity.memory),
        ("pods", &capacity.pods),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Quantity(v.clone())))
    .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            annotations: Some(BTreeMap::from([
                (
                    KWOK_NODE_ANNOTATION.to_string(),
                    KWOK_NODE_ANNOTATION_VALUE.to_string(),
                ),
                ("node.alpha.kubernetes.io/ttl".to_string(), "0".to_string()),
            ])),
            labels: Some(BTreeMap::from([
                ("kubernetes.io/arch".to_string(), "amd64".to_string()),
                ("kubernetes.io/hostname".to_string(), name.to_string()),
                ("kubernetes.io/os".to_string(), "linux".to_string()),
                ("node-role.kubernetes.io/agent".to_string(), String::new()),
                (KWOK_NODE_LABEL.0.to_string(), KWOK_NODE_LABEL.1.to_string()),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(resources.clone()),
            capacity: Some(resources),
            ..NodeStatus::default()
        }),
    }
}

/// Whether `node` is Ready and schedulable (no `not-ready`/`unreachable`
/// taint left by the node lifecycle controller).
pub fn node_ready(node: &Node) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let tainted = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| {
            ts.iter().any(|t| {
                t.key == "node.kubernetes.io/not-ready" || t.key == "node.kubernetes.io/unreachable"
            })
        });
    ready
        && !tainted
        && !node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, Taint};

    #[test]
    fn fake_node_is_selected_by_kwok_and_has_capacity() {
        let node = fake_node("kwok-node-0", &NodeCapacity::default());
        let annotations = node.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            annotations[KWOK_NODE_ANNOTATION],
            KWOK_NODE_ANNOTATION_VALUE
        );
        let status = node.status.as_ref().unwrap();
        assert_eq!(
            status.allocatable.as_ref().unwrap()["cpu"],
            Quantity("32".into())
        );
        assert_eq!(node.metadata.labels.as_ref().unwrap()["type"], "kwok");
        assert!(!node_ready(&node));
    }

    #[test]
    fn readiness_needs_condition_and_no_taint() {
        let mut node = fake_node("n", &NodeCapacity::default());
        node.status.as_mut().unwrap().conditions = Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..NodeCondition::default()
        }]);
        assert!(node_ready(&node));
        node.spec.as_mut().unwrap().taints = Some(vec![Taint {
            key: "node.kubernetes.io/not-ready".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        }]);
        assert!(!node_ready(&node));
    }
}
