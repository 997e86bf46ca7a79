//! deploy/: every herald service (compose) and container (Kubernetes) sets the XMTP network
//! explicitly, never the embedded node (refused with Postgres); compose runs `herald devnode`
//! as a service of its own. (No Docker engine on our machines: the files are parsed here.)

use std::path::Path;

use serde_norway::Value;

fn deploy(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(path),
    )
    .unwrap()
}

fn is_real_network(value: &str) -> bool {
    !value.is_empty() && !value.contains("embedded")
}

#[test]
fn compose_sets_the_xmtp_network_of_every_herald_service_and_runs_a_devnode() {
    let doc: Value = serde_norway::from_str(&deploy("compose.yaml")).unwrap();
    let services = doc["services"].as_mapping().unwrap();
    let mut servers = 0;
    let mut devnodes = 0;
    for (name, service) in services {
        let built_from_herald = service["build"]["dockerfile"]
            .as_str()
            .is_some_and(|d| d.ends_with("deploy/Dockerfile"));
        if !built_from_herald {
            continue;
        }
        let command = service["command"].as_sequence();
        if command.and_then(|c| c.first()).and_then(Value::as_str) == Some("devnode") {
            devnodes += 1;
            continue;
        }
        servers += 1;
        let network = service["environment"]["HERALD_XMTP_NETWORK"]
            .as_str()
            .unwrap_or_else(|| panic!("service {name:?} does not set HERALD_XMTP_NETWORK"));
        // `${VAR:-default}`: the default is what runs when the variable is unset.
        let default = network
            .strip_prefix("${HERALD_XMTP_NETWORK:-")
            .and_then(|d| d.strip_suffix('}'))
            .unwrap_or(network);
        assert!(is_real_network(default), "{name:?}: {network}");
        assert!(
            service["environment"]["HERALD_PUBLIC_URL"]
                .as_str()
                .is_some(),
            "{name:?} sets the public URL the SIWE domain comes from"
        );
    }
    assert!(servers >= 1, "a herald server service");
    assert_eq!(devnodes, 1, "`herald devnode` as a service of its own");
}

#[test]
fn every_kubernetes_herald_container_sets_the_xmtp_network() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s");
    let mut containers = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let doc = <Value as serde::Deserialize>::deserialize(doc).unwrap();
            let Some(list) = doc["spec"]["template"]["spec"]["containers"].as_sequence() else {
                continue;
            };
            for container in list {
                if !container["image"]
                    .as_str()
                    .is_some_and(|i| i.contains("herald"))
                {
                    continue;
                }
                containers += 1;
                let env = container["env"].as_sequence().cloned().unwrap_or_default();
                let network = env
                    .iter()
                    .find(|e| e["name"] == "HERALD_XMTP_NETWORK")
                    .and_then(|e| e["value"].as_str())
                    .unwrap_or_else(|| {
                        panic!("{:?} does not set HERALD_XMTP_NETWORK", container["name"])
                    });
                assert!(is_real_network(network), "{network}");
                assert!(env.iter().any(|e| e["name"] == "HERALD_PUBLIC_URL"));
            }
        }
    }
    assert!(containers >= 1, "a herald container in deploy/k8s");
}
