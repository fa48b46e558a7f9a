//! `mtv-tests job --parallelism N [--image REF]`: prints the Kubernetes/OpenShift manifest that runs
//! the suite in the cluster itself, N partitions at once: a ServiceAccount with exactly the
//! permissions of [`crate::permissions`] (the list `doctor` checks), the providers file as a Secret,
//! a volume for the results, and an Indexed Job whose pod `JOB_COMPLETION_INDEX` runs partition
//! `count:<index+1>/N` into `/results/partition-<index+1>`. `mtv-tests report merge` then joins them.

use std::collections::BTreeMap;
use std::path::Path;

use miette::{Report, miette};
use serde_json::{Value, json};

use crate::cli::JobArgs;
use crate::permissions::{Needs, RUN_PERMISSIONS};

/// The image `job` uses unless `--image` names another (built from the `Containerfile`).
pub const DEFAULT_IMAGE: &str = "localhost/mtv-tests:latest";
const NAME: &str = "mtv-tests";

/// The manifest, as YAML documents.
pub fn job_command(args: &JobArgs, cwd: &Path) -> Result<u8, Report> {
    let providers = match &args.providers_file {
        Some(path) => Some(
            std::fs::read(cwd.join(path))
                .map_err(|e| miette!("cannot read the providers file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let objects = manifest(args, providers.as_deref());
    let mut text = String::new();
    for object in &objects {
        text.push_str("---\n");
        text.push_str(
            &serde_saphyr::to_string(object).map_err(|e| miette!("cannot write YAML: {e}"))?,
        );
    }
    crate::print(&text)?;
    Ok(0)
}

/// Namespace, ServiceAccount, ClusterRole and its binding, the providers Secret (when a file is
/// given), the results claim and the Indexed Job.
pub fn manifest(args: &JobArgs, providers: Option<&[u8]>) -> Vec<Value> {
    let namespace = args.namespace.as_str();
    let labels = json!({"app.kubernetes.io/name": NAME});
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": namespace, "labels": labels}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": NAME, "namespace": namespace, "labels": labels}}),
        cluster_role(&labels),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": format!("{NAME}-{namespace}"), "labels": labels},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": format!("{NAME}-runner")},
               "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}]}),
    ];
    if let Some(content) = providers {
        use base64::Engine as _;
        objects.push(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("{NAME}-providers"), "namespace": namespace, "labels": labels},
            "type": "Opaque",
            "data": {"providers.json": base64::engine::general_purpose::STANDARD.encode(content)}}));
    }
    let mut claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": format!("{NAME}-results"), "namespace": namespace, "labels": labels},
        "spec": {"accessModes": ["ReadWriteMany"],
                 "resources": {"requests": {"storage": "1Gi"}}}});
    if let Some(class) = &args.results_storage_class {
        claim["spec"]["storageClassName"] = json!(class);
    }
    objects.push(claim);
    objects.push(job(args, providers.is_some(), &labels));
    objects
}

/// One rule per API group and verb set, from the run's permission list (every line: a Job's
/// selection is only known when it runs).
fn cluster_role(labels: &Value) -> Value {
    let needs = Needs::all();
    let mut rules: BTreeMap<(&str, Vec<&str>), Vec<&str>> = BTreeMap::new();
    for permission in RUN_PERMISSIONS.iter().filter(|p| needs.wants(p.need)) {
        rules
            .entry((permission.group, permission.verbs.to_vec()))
            .or_default()
            .push(permission.resource);
    }
    let rules: Vec<Value> = rules
        .into_iter()
        .map(|((group, verbs), resources)| {
            json!({"apiGroups": [group], "resources": resources, "verbs": verbs})
        })
        .collect();
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": format!("{NAME}-runner"), "labels": labels},
           "rules": rules})
}

/// A word for `sh`, quoted.
fn shell_word(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// What each pod runs: a kubeconfig from its ServiceAccount, then its partition of the run.
fn pod_script(args: &JobArgs, with_providers: bool) -> String {
    let mut run = vec![
        "mtv-tests run --no-progress --kubeconfig \"$HOME/kubeconfig\"".to_string(),
        format!(
            "--partition \"count:$((JOB_COMPLETION_INDEX + 1))/{}\"",
            args.parallelism
        ),
        "--results \"/results/partition-$((JOB_COMPLETION_INDEX + 1))\"".to_string(),
    ];
    if with_providers {
        run.push("--providers-file /etc/mtv-tests/providers.json".to_string());
    }
    run.extend(args.run_args.iter().map(|a| shell_word(a)));
    format!(
        r#"set -eu
umask 077
sa=/var/run/secrets/kubernetes.io/serviceaccount
cat > "$HOME/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: in-cluster
  cluster:
    server: https://${{KUBERNETES_SERVICE_HOST}}:${{KUBERNETES_SERVICE_PORT}}
    certificate-authority: $sa/ca.crt
users:
- name: mtv-tests
  user:
    token: $(cat $sa/token)
contexts:
- name: in-cluster
  context: {{cluster: in-cluster, user: mtv-tests}}
current-context: in-cluster
EOF
exec {}
"#,
        run.join(" ")
    )
}

fn job(args: &JobArgs, with_providers: bool, labels: &Value) -> Value {
    let mut mounts = vec![json!({"name": "results", "mountPath": "/results"})];
    let mut volumes = vec![json!({"name": "results",
        "persistentVolumeClaim": {"claimName": format!("{NAME}-results")}})];
    if with_providers {
        mounts.push(json!({"name": "providers", "mountPath": "/etc/mtv-tests", "readOnly": true}));
        volumes.push(json!({"name": "providers",
            "secret": {"secretName": format!("{NAME}-providers")}}));
    }
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": NAME, "namespace": args.namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": args.parallelism,
            "parallelism": args.parallelism,
            // A failed test is a result, not a reason to run the partition again.
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": NAME,
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": true,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": NAME,
                        "image": args.image,
                        "command": ["/bin/sh", "-c", pod_script(args, with_providers)],
                        "env": [{"name": "HOME", "value": "/tmp"}],
                        "securityContext": {"allowPrivilegeEscalation": false,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(run_args: &[&str]) -> JobArgs {
        JobArgs {
            parallelism: 3,
            image: DEFAULT_IMAGE.into(),
            namespace: "qe".into(),
            providers_file: None,
            results_storage_class: None,
            run_args: run_args.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn each_pod_runs_its_partition_with_the_run_arguments_quoted() {
        let script = pod_script(&args(&["-m", "tier0 and not warm"]), true);
        assert!(script.contains("--partition \"count:$((JOB_COMPLETION_INDEX + 1))/3\""));
        assert!(script.contains("--results \"/results/partition-$((JOB_COMPLETION_INDEX + 1))\""));
        assert!(script.ends_with(
            "--providers-file /etc/mtv-tests/providers.json '-m' 'tier0 and not warm'\n"
        ));
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_cluster_role_grants_the_permission_list_and_nothing_else() {
        let role = cluster_role(&json!({}));
        let granted: Vec<String> = role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rule| {
                let group = rule["apiGroups"][0].as_str().unwrap().to_string();
                let verbs: Vec<String> = rule["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                rule["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(move |r| {
                        let (group, r) = (group.clone(), r.as_str().unwrap().to_string());
                        verbs
                            .clone()
                            .into_iter()
                            .map(move |v| format!("{v} {r}.{group}"))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let listed: Vec<String> = crate::permissions::needed(&Needs::all())
            .map(|(verb, p)| format!("{verb} {}.{}", p.resource, p.group))
            .collect();
        let (mut granted, mut listed) = (granted, listed);
        granted.sort();
        listed.sort();
        assert_eq!(granted, listed);
    }
}
