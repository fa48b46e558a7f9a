//! `mtv-tests diagnose PLAN [-n NS]`: the diagnostics of a failed step, for any Plan (also one the
//! suite did not make): a bundle with the Plan, its Migrations, maps and Providers, the logs (tail)
//! of its pods and of the Forklift controller, the Events of its namespaces sorted by time, the
//! inventory's view of each VM, and the
//! root cause in one line, printed as kubectl-mtv's plan description would put it. Reads only.

use std::path::Path;

use miette::{Report, miette};
use mtv_engine::cluster::{Kind, kinds};
use mtv_engine::diagnostics::{event_time, root_cause, write_pod_logs, yaml};
use serde_json::Value;

use crate::cli::DiagnoseArgs;

async fn list(
    client: &kube::Client,
    kind: &Kind,
    namespace: &str,
) -> Result<Vec<Value>, kube::Error> {
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client.clone(), namespace, &kind.api_resource());
    let list = api.list(&kube::api::ListParams::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect())
}

async fn get(
    client: &kube::Client,
    kind: &Kind,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, kube::Error> {
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client.clone(), namespace, &kind.api_resource());
    Ok(api
        .get_opt(name)
        .await?
        .and_then(|o| serde_json::to_value(o).ok()))
}

/// Reads the Plan and what belongs to it, writes the bundle, prints the root cause.
pub async fn diagnose_command(args: &DiagnoseArgs) -> Result<u8, Report> {
    let target = crate::doctor::target_of(&args.target)?;
    let client = mtv_engine::target::client_for(&target)
        .await
        .map_err(|e| miette!("{e}"))?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let plan = get(&client, &kinds::PLAN, &namespace, &args.plan)
        .await
        .map_err(|e| miette!("cannot read Plan {namespace}/{}: {e}", args.plan))?
        .ok_or_else(|| {
            miette!(
                help = "pass the Plan's namespace with -n",
                "there is no Plan {namespace}/{}",
                args.plan
            )
        })?;
    let dir = args
        .output
        .clone()
        .unwrap_or_else(|| format!("diagnose-{}", args.plan).into());
    std::fs::create_dir_all(&dir).map_err(|e| miette!("cannot create {}: {e}", dir.display()))?;
    write_objects(&client, &dir, &namespace, &plan).await;
    let target_namespace = plan["spec"]["targetNamespace"]
        .as_str()
        .unwrap_or(&namespace)
        .to_string();
    let logs = write_pod_logs(
        &client,
        &dir,
        std::slice::from_ref(&plan),
        &target_namespace,
        &args.mtv_namespace,
    )
    .await;
    write_events(&client, &dir, &[&namespace, &target_namespace]).await;
    write_inventory_vms(args, &target, &client, &dir, &namespace, &plan).await;
    let line = root_cause(&plan, &logs);
    if let Some(line) = &line {
        let _ = std::fs::write(dir.join("root-cause.txt"), format!("{line}\n"));
    }
    println!(
        "Plan {namespace}/{}: {}",
        args.plan,
        line.as_deref()
            .unwrap_or("no pipeline step of its VMs failed")
    );
    println!("diagnostics: {}", dir.display());
    Ok(0)
}

/// The Plan, its Migrations, maps and Providers, as YAML files (never Secrets).
async fn write_objects(client: &kube::Client, dir: &Path, namespace: &str, plan: &Value) {
    let write = |file: String, object: &Value| {
        let _ = std::fs::write(dir.join(file), yaml(object));
    };
    write(format!("plan-{}.yaml", name_of(plan)), plan);
    let uid = plan["metadata"]["uid"].as_str().unwrap_or_default();
    for migration in list(client, &kinds::MIGRATION, namespace)
        .await
        .unwrap_or_default()
    {
        let ours = migration["spec"]["plan"]["name"] == plan["metadata"]["name"]
            || migration["spec"]["plan"]["uid"] == uid;
        if ours {
            write(
                format!("migration-{}.yaml", name_of(&migration)),
                &migration,
            );
        }
    }
    let references = [
        (&kinds::STORAGE_MAP, "/spec/map/storage", "storagemap"),
        (&kinds::NETWORK_MAP, "/spec/map/network", "networkmap"),
        (&kinds::PROVIDER, "/spec/provider/source", "provider"),
        (&kinds::PROVIDER, "/spec/provider/destination", "provider"),
    ];
    for (kind, pointer, prefix) in references {
        let Some(reference) = plan.pointer(pointer) else {
            continue;
        };
        let ns = reference["namespace"].as_str().unwrap_or(namespace);
        let Some(name) = reference["name"].as_str() else {
            continue;
        };
        if let Ok(Some(object)) = get(client, kind, ns, name).await {
            write(format!("{prefix}-{name}.yaml"), &object);
        }
    }
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("unnamed")
}

/// `inventory-<vm>.yaml`: what Forklift's inventory knows of each VM of the Plan, read from its
/// source Provider's tree with the user's token, as the run's bundle has it. Nothing is written when
/// the inventory or the Provider cannot be reached (the bundle is still useful without it).
async fn write_inventory_vms(
    args: &DiagnoseArgs,
    target: &mtv_engine::target::Target,
    client: &kube::Client,
    dir: &Path,
    namespace: &str,
    plan: &Value,
) {
    let Some(source) = plan.pointer("/spec/provider/source") else {
        return;
    };
    let provider_namespace = source["namespace"].as_str().unwrap_or(namespace);
    let Some(provider_name) = source["name"].as_str() else {
        return;
    };
    let Ok(Some(provider)) = get(client, &kinds::PROVIDER, provider_namespace, provider_name).await
    else {
        return;
    };
    let (Some(provider_type), Some(uid)) = (
        provider["spec"]["type"].as_str(),
        provider["metadata"]["uid"].as_str(),
    ) else {
        return;
    };
    let inventory = crate::doctor::discover_inventory(
        target,
        client.clone(),
        &args.mtv_namespace,
        args.inventory_url.as_deref(),
        None,
    )
    .await;
    let Ok(Ok(inventory)) = inventory else {
        return;
    };
    mtv_engine::diagnostics::write_plan_inventory_vms(&inventory, provider_type, uid, plan, dir)
        .await;
}

/// `events.yaml`: the Events of the namespaces, oldest first.
async fn write_events(client: &kube::Client, dir: &Path, namespaces: &[&String]) {
    let mut events = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for namespace in namespaces {
        if seen.insert(namespace.as_str()) {
            events.extend(
                list(client, &kinds::EVENT, namespace)
                    .await
                    .unwrap_or_default(),
            );
        }
    }
    events.sort_by_key(|event| event_time(event).to_string());
    let _ = std::fs::write(dir.join("events.yaml"), yaml(&Value::Array(events)));
}
