//! `mtv-tests doctor`: a preflight of the target for the selected scenarios and profile that creates,
//! changes and deletes nothing on the cluster or the source. It reads: MTV's version, the Forklift
//! pods, the inventory (with the user's token), the user's permissions (SelfSubjectAccessReview for
//! every verb of [`crate::permissions`]), the storage class, the VDDK image, copy-offload's vendor
//! settings, datastores and Forklift switch, the remote cluster, and, through the source adapter,
//! every VM and template the scenarios clone. Each finding is one line saying what is wrong
//! and what to do; exit 0 when ready, 1 when not.

use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, PostParams};
use miette::{Report, miette};
use mtv_api::ProviderType;
use mtv_config::Env;
use mtv_engine::cluster::Cluster;
use mtv_engine::inventory::Inventory;
use mtv_engine::ledger::Ledger;
use mtv_engine::session::mtv_version;
use mtv_engine::session::source_config;
use mtv_engine::target::{Target, check_remote_cluster, config_with_tls, server_token_and_cluster};
use mtv_providers::SourceProvider;

use crate::cli::DoctorArgs;
use crate::front::{self, Front};
use crate::permissions::{Needs, Permission, needed};

/// The cluster `doctor` checks: always an explicit one.
pub fn target_of(args: &crate::cli::TargetArgs) -> Result<Target, Report> {
    match (&args.kubeconfig, &args.context) {
        (Some(path), context) => Ok(Target::Kubeconfig {
            path: path.clone(),
            context: context.clone(),
        }),
        (None, Some(context)) => Ok(Target::Context(context.clone())),
        (None, None) => Err(miette!(
            help = "pass --kubeconfig PATH or --context NAME; for a lab, `mtv-tests lab serve \
                    --kubeconfig-out lab.kubeconfig` and --kubeconfig lab.kubeconfig",
            "doctor checks a cluster, and none was named (the embedded lab of `run` is always ready)"
        )),
    }
}

/// One line of the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Worth knowing; the run can go.
    Note,
    /// The run would fail: what is wrong and what to do.
    Fail,
}

impl Finding {
    fn ok(check: &'static str, message: impl Into<String>) -> Self {
        Finding {
            check,
            status: Status::Ok,
            message: message.into(),
        }
    }

    fn note(check: &'static str, message: impl Into<String>) -> Self {
        Finding {
            check,
            status: Status::Note,
            message: message.into(),
        }
    }

    fn fail(check: &'static str, message: impl Into<String>) -> Self {
        Finding {
            check,
            status: Status::Fail,
            message: message.into(),
        }
    }

    pub fn line(&self) -> String {
        let tag = match self.status {
            Status::Ok => "ok  ",
            Status::Note => "note",
            Status::Fail => "FAIL",
        };
        format!("{tag} {}: {}", self.check, self.message)
    }
}

/// What the selected scenarios need of the permissions.
fn needs_of(front: &Front) -> Needs {
    let selected = front.collection.selected_scenarios();
    let configs = selected
        .iter()
        .map(|index| &front.catalog.scenarios[*index].entry.config);
    let mut needs = Needs {
        openshift_source: front.config.profile.provider_type == ProviderType::Openshift,
        ..Needs::default()
    };
    for config in configs {
        needs.warm |= config.warm_migration;
        needs.node_placement |= config.target_node_selector.is_some();
    }
    needs
}

/// `doctor`: every check, printed as it is judged; the exit code says whether the run can go.
pub async fn doctor_command(
    args: &DoctorArgs,
    env: &dyn Env,
    cwd: &Path,
    target: Target,
) -> Result<u8, Report> {
    let front = front::load(&args.common, env, cwd)?;
    for warning in &front.warnings {
        eprintln!("warning: {warning}");
    }
    let client =
        crate::cluster_tls::client(&target, front.config.settings.insecure_verify_skip).await?;
    let findings = run_checks(&front, &target, client).await?;
    for finding in &findings {
        println!("{}", finding.line());
    }
    let failed = findings.iter().filter(|f| f.status == Status::Fail).count();
    if failed == 0 {
        println!("doctor: ready to run");
        Ok(0)
    } else {
        println!("doctor: {failed} problems; a run would fail (FAIL above, each with what to do)");
        Ok(1)
    }
}

/// The fast part of `doctor` that `run` does before it creates anything: the storage class and the
/// source's templates. A FAIL stops the run (exit 2), each with what to do. The credentials are left
/// to the run's own Provider, whose connection test Forklift judges (and stops the run at once).
pub async fn before_run(front: &Front, client: &kube::Client) -> Result<(), Report> {
    let mut findings = vec![check_storage_class(client, &front.context.storage_class).await];
    findings.extend(check_source(front, client, Login::Skip).await);
    let failures: Vec<String> = findings
        .iter()
        .filter(|f| f.status == Status::Fail)
        .map(Finding::line)
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    Err(miette!(
        help = "nothing was created; `mtv-tests doctor` with the same options checks the rest too",
        "the run cannot start:\n{}",
        failures.join("\n")
    ))
}

async fn run_checks(
    front: &Front,
    target: &Target,
    client: kube::Client,
) -> Result<Vec<Finding>, Report> {
    let settings = &front.config.settings;
    let namespace = &settings.mtv_namespace;
    let mut findings = vec![check_mtv(&client, namespace).await];
    findings.push(check_pods(&client, namespace).await);
    findings.push(check_inventory(front, target, client.clone()).await?);
    findings.extend(check_permissions(&client, &needs_of(front)).await);
    findings.push(check_storage_class(&client, &front.context.storage_class).await);
    findings.extend(check_vddk(front));
    findings.extend(check_copy_offload(front, &client).await);
    findings.extend(check_remote(front, target));
    findings.extend(check_source(front, &client, Login::Check).await);
    Ok(findings)
}

async fn check_mtv(client: &kube::Client, namespace: &str) -> Finding {
    match mtv_version(client, namespace).await {
        Ok(Some(version)) => Finding::ok("mtv", format!("MTV {version} installed in {namespace}")),
        Ok(None) => Finding::fail(
            "mtv",
            format!(
                "no MTV (mtv-operator or forklift-operator ClusterServiceVersion) in {namespace}; \
                 install MTV, or set mtv_namespace to where it is"
            ),
        ),
        Err(error) => Finding::fail(
            "mtv",
            format!("cannot read MTV's version in {namespace}: {error}"),
        ),
    }
}

async fn check_pods(client: &kube::Client, namespace: &str) -> Finding {
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), namespace);
    let list = match pods.list(&ListParams::default()).await {
        Ok(list) => list,
        Err(error) => {
            return Finding::fail(
                "forklift-pods",
                format!("cannot list the pods of {namespace}: {error}"),
            );
        }
    };
    let forklift: Vec<&Pod> = list
        .items
        .iter()
        .filter(|p| {
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("forklift-"))
        })
        .collect();
    let phase = |pod: &Pod| {
        pod.status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "unknown".into())
    };
    let not_ready: Vec<String> = forklift
        .iter()
        .filter(|p| !matches!(phase(p).as_str(), "Running" | "Succeeded"))
        .map(|p| {
            format!(
                "{} is {}",
                p.metadata.name.as_deref().unwrap_or("?"),
                phase(p)
            )
        })
        .collect();
    let controller = forklift.iter().any(|p| {
        p.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("forklift-controller"))
    });
    if !controller {
        Finding::fail(
            "forklift-pods",
            format!(
                "no forklift-controller pod in {namespace}; check the ForkliftController and the MTV operator's logs"
            ),
        )
    } else if !not_ready.is_empty() {
        Finding::fail(
            "forklift-pods",
            format!(
                "{}; `kubectl describe pod -n {namespace}` says why",
                not_ready.join(", ")
            ),
        )
    } else {
        Finding::ok(
            "forklift-pods",
            format!("{} Forklift pods ready", forklift.len()),
        )
    }
}

/// The inventory, found as a run finds it and read with the user's token.
async fn check_inventory(
    front: &Front,
    target: &Target,
    client: kube::Client,
) -> Result<Finding, Report> {
    let settings = &front.config.settings;
    let inventory = discover_inventory(
        target,
        client,
        &settings.mtv_namespace,
        front.context.inventory_url.as_deref(),
        settings.insecure_verify_skip,
    )
    .await?;
    Ok(match inventory {
        Err(error) => Finding::fail("inventory", format!("{error}")),
        Ok(inventory) => match inventory.get("/providers").await {
            Ok(_) => Finding::ok(
                "inventory",
                format!("reachable at {} with your token", inventory.url()),
            ),
            Err(error) => Finding::fail(
                "inventory",
                format!(
                    "{} does not answer with your token: {error}; the token needs get/list on \
                     Providers, and --inventory-url must be the inventory's Route",
                    inventory.url()
                ),
            ),
        },
    })
}

/// The Forklift inventory, found as a run finds it (its Route in `mtv_namespace`, or `url`), for
/// commands that change nothing. Discovering the Route needs the engine's cluster handle, whose
/// ledger goes to a temporary file that is removed. The outer error: the target cannot be read.
pub async fn discover_inventory(
    target: &Target,
    client: kube::Client,
    mtv_namespace: &str,
    url: Option<&str>,
    insecure_verify_skip: Option<bool>,
) -> Result<Result<Inventory, mtv_engine::inventory::InventoryError>, Report> {
    let config = config_with_tls(target, insecure_verify_skip)
        .await
        .map_err(|e| miette!("{e}"))?;
    let ledger_dir = std::env::temp_dir().join(format!(
        "mtv-tests-doctor-{}-{}",
        std::process::id(),
        mtv_engine::session::random_suffix(6)
    ));
    std::fs::create_dir_all(&ledger_dir)
        .map_err(|e| miette!("cannot create {}: {e}", ledger_dir.display()))?;
    let ledger = Ledger::create(
        &ledger_dir.join("resources.json"),
        "doctor",
        &target.describe(),
    )
    .map_err(|e| miette!("{e}"));
    let inventory = match ledger {
        Ok(ledger) => {
            let cluster = Cluster::new(client, Arc::new(ledger), Arc::new(NoEvents));
            Ok(Inventory::discover(&cluster, &config, mtv_namespace, url).await)
        }
        Err(error) => Err(error),
    };
    let _ = std::fs::remove_dir_all(&ledger_dir);
    inventory
}

struct NoEvents;

impl mtv_engine::events::EventSink for NoEvents {
    fn emit(&self, _event: mtv_engine::events::Event) {}
}

/// One line per verb the user lacks; one `ok` line when nothing is missing.
async fn check_permissions(client: &kube::Client, needs: &Needs) -> Vec<Finding> {
    let mut missing = Vec::new();
    let mut asked = 0;
    for (verb, permission) in needed(needs) {
        asked += 1;
        match allowed(client, verb, permission).await {
            Ok(true) => {}
            Ok(false) => missing.push(Finding::fail(
                "permissions",
                format!(
                    "you cannot {verb} {} (cluster-wide); a run needs it: ask an administrator to \
                     grant it (`mtv-tests job` prints a ClusterRole with exactly what a run needs)",
                    permission.resource_name()
                ),
            )),
            Err(error) => {
                return vec![Finding::fail(
                    "permissions",
                    format!(
                        "cannot ask the API server what you may do (SelfSubjectAccessReview): {error}"
                    ),
                )];
            }
        }
    }
    if missing.is_empty() {
        vec![Finding::ok(
            "permissions",
            format!("allowed all {asked} verbs the selected scenarios need"),
        )]
    } else {
        missing
    }
}

async fn allowed(
    client: &kube::Client,
    verb: &str,
    permission: &Permission,
) -> Result<bool, kube::Error> {
    let (resource, subresource) = match permission.resource.split_once('/') {
        Some((resource, sub)) => (resource, Some(sub.to_string())),
        None => (permission.resource, None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(permission.group.to_string()),
                resource: Some(resource.to_string()),
                subresource,
                verb: Some(verb.to_string()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let api: kube::Api<SelfSubjectAccessReview> = kube::Api::all(client.clone());
    let answer = api.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

async fn check_storage_class(client: &kube::Client, name: &str) -> Finding {
    let api: kube::Api<StorageClass> = kube::Api::all(client.clone());
    match api.get_opt(name).await {
        Ok(Some(_)) => Finding::ok("storage-class", format!("storage class {name} exists")),
        Ok(None) => {
            let known: Vec<String> = api
                .list(&ListParams::default())
                .await
                .map(|list| {
                    list.items
                        .into_iter()
                        .filter_map(|s| s.metadata.name)
                        .collect()
                })
                .unwrap_or_default();
            Finding::fail(
                "storage-class",
                format!(
                    "storage class {name} does not exist; pass --storage-class with one of: {}",
                    if known.is_empty() {
                        "(none listed)".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        }
        Err(error) => Finding::fail(
            "storage-class",
            format!("cannot read storage class {name}: {error}"),
        ),
    }
}

/// vSphere without copy-offload reads disks through VDDK when the profile names an image.
fn check_vddk(front: &Front) -> Option<Finding> {
    let profile = &front.config.profile;
    if profile.provider_type != ProviderType::Vsphere {
        return None;
    }
    Some(match profile.field_str("vddk_init_image") {
        Some(image) => Finding::ok("vddk", format!("VDDK image {image}")),
        None => Finding::note(
            "vddk",
            format!(
                "profile '{}' has no vddk_init_image: Forklift copies vSphere disks without VDDK \
                 (slower); add one to measure what users run",
                profile.name
            ),
        ),
    })
}

/// Whether any selected scenario is `is`.
fn any_selected(front: &Front, is: impl Fn(&mtv_catalog::Scenario) -> bool) -> bool {
    front
        .collection
        .selected_scenarios()
        .into_iter()
        .any(|index| is(&front.catalog.scenarios[index]))
}

/// Copy-offload scenarios: the vendor's settings (complete, or loading the profile had failed) with
/// the datastores they copy between, and Forklift's `feature_copy_offload` switch, which turns the
/// XCOPY populator off for every StorageMap when it is "false".
async fn check_copy_offload(front: &Front, client: &kube::Client) -> Vec<Finding> {
    let Some(copy_offload) = &front.copy_offload else {
        return Vec::new();
    };
    if !any_selected(front, mtv_catalog::Scenario::is_copyoffload) {
        return Vec::new();
    }
    let vendor = copy_offload.storage_vendor_product;
    let vendor_fields: Vec<&str> = vendor
        .secret_fields()
        .iter()
        .map(|(field, _)| *field)
        .collect();
    let datastores: Vec<&str> = [
        Some(copy_offload.datastore_id.as_str()),
        copy_offload.secondary_datastore_id.as_deref(),
        copy_offload.non_xcopy_datastore_id.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut findings = vec![Finding::ok(
        "copy-offload",
        format!(
            "{vendor} array {} ({}), datastores {}",
            copy_offload.storage_hostname,
            if vendor_fields.is_empty() {
                "no vendor fields needed".to_string()
            } else {
                format!("with {}", vendor_fields.join(", "))
            },
            datastores.join(", ")
        ),
    )];
    let namespace = &front.config.settings.mtv_namespace;
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client.clone(),
        namespace,
        &mtv_engine::cluster::kinds::FORKLIFT_CONTROLLER.api_resource(),
    );
    match api.list(&ListParams::default()).await {
        Ok(list) => {
            for controller in list.items {
                let switch = controller.data["spec"]["feature_copy_offload"].clone();
                if switch == "false" || switch == false {
                    let name = controller.metadata.name.unwrap_or_default();
                    findings.push(Finding::fail(
                        "copy-offload",
                        format!(
                            "ForkliftController {namespace}/{name} sets feature_copy_offload to \
                             false, so Forklift copies every disk over the network; set it to \
                             \"true\" (kubectl patch forkliftcontroller {name} -n {namespace} \
                             --type merge -p '{{\"spec\":{{\"feature_copy_offload\":\"true\"}}}}')"
                        ),
                    ));
                }
            }
        }
        Err(error) => findings.push(Finding::fail(
            "copy-offload",
            format!("cannot read the ForkliftController in {namespace}: {error}"),
        )),
    }
    findings
}

/// Remote scenarios: a remote destination Provider reaches this cluster by its URL with the
/// kubeconfig's bearer token, and `remote_ocp_cluster` must name this cluster (the run's guard).
/// Remote scenarios skipped for want of `remote_ocp_cluster` are a note.
fn check_remote(front: &Front, target: &Target) -> Vec<Finding> {
    let remote = front
        .config
        .settings
        .remote_ocp_cluster
        .as_deref()
        .filter(|r| !r.trim().is_empty());
    let mut findings = Vec::new();
    let Some(remote) = remote else {
        let skipped: std::collections::BTreeSet<&str> = front
            .collection
            .items
            .iter()
            .filter(|item| matches!(item.outcome, mtv_catalog::Outcome::Skipped { .. }))
            .filter(|item| front.catalog.scenarios[item.scenario_index].is_remote())
            .map(|item| item.scenario.as_str())
            .collect();
        if !skipped.is_empty() {
            findings.push(Finding::note(
                "remote",
                format!(
                    "{} remote scenarios will be skipped: remote_ocp_cluster is not set (pass \
                     --tc remote_ocp_cluster:<a part of this cluster's API host>)",
                    skipped.len()
                ),
            ));
        }
        return findings;
    };
    if !any_selected(front, mtv_catalog::Scenario::is_remote) {
        return findings;
    }
    let (url, token, cluster_name) = match server_token_and_cluster(target) {
        Ok(found) => found,
        Err(error) => {
            findings.push(Finding::fail("remote", error.to_string()));
            return findings;
        }
    };
    findings.push(match (check_remote_cluster(remote, &url, &cluster_name), token) {
        (Err(error), _) => Finding::fail("remote", error.to_string()),
        (Ok(()), None) => Finding::fail(
            "remote",
            "the remote destination Provider needs a bearer token, and the kubeconfig's user has \
             none; use a token-based user (a ServiceAccount's `kubectl create token`, or `oc login`)",
        ),
        (Ok(()), Some(_)) => Finding::ok(
            "remote",
            format!("remote_ocp_cluster `{remote}` is this cluster ({url}), reached with your token"),
        ),
    });
    findings
}

/// The source VMs and templates the selected scenarios clone, as the run names them.
fn source_names(front: &Front) -> Vec<String> {
    let mut names: Vec<String> = front
        .collection
        .selected_scenarios()
        .into_iter()
        .flat_map(|index| &front.catalog.scenarios[index].entry.config.virtual_machines)
        .map(|vm| match (&front.context.copy_offload, vm.clone) {
            (Some(copy_offload), true) => copy_offload
                .default_vm_name
                .clone()
                .unwrap_or_else(|| vm.name.clone()),
            _ => vm.name.clone(),
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether [`check_source`] logs in with the profile's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Login {
    Check,
    Skip,
}

/// The source through the adapter a run would use (`mtv_providers::connect` with the profile, as
/// the run maps it): reachable, the credentials (with [`Login::Check`]), and every template there.
/// Before a run ([`Login::Skip`]) a source that cannot be reached is only a note: the run's
/// bootstrap stops with the adapter's own error.
async fn check_source(front: &Front, client: &kube::Client, login: Login) -> Vec<Finding> {
    let profile = &front.config.profile;
    let url = profile.api_url.as_deref().unwrap_or_default();
    match profile.provider_type {
        ProviderType::Openshift => {
            return vec![Finding::ok(
                "source",
                "an OpenShift source: the run creates its source VMs in this cluster",
            )];
        }
        // The OVA adapter reads the share through the inventory of the run's own Provider.
        ProviderType::Ova => {
            return vec![Finding::note(
                "source",
                format!(
                    "ova source {url}: its VMs are read from the Forklift inventory of the run's \
                     Provider, which only the run creates; not checked"
                ),
            )];
        }
        _ => {}
    }
    let config = source_config(&front.context, profile, client.clone(), None);
    let adapter = match mtv_providers::connect(&config).await {
        Ok(adapter) => adapter,
        Err(error) => return vec![connect_failure(front, url, login, &error)],
    };
    let mut findings = Vec::new();
    if login == Login::Check {
        findings.push(Finding::ok(
            "credentials",
            format!("profile '{}' logs in to {url}", profile.name),
        ));
    }
    for name in source_names(front) {
        match adapter.find(&name).await {
            Ok(Some(_)) => {}
            Ok(None) => findings.push(Finding::fail(
                "source",
                format!(
                    "VM or template `{name}` does not exist on {} source {url} (profile '{}'); \
                     create it there, or leave out the scenarios that clone it (-k)",
                    profile.provider_type, profile.name
                ),
            )),
            Err(error) => findings.push(Finding::fail(
                "source",
                format!("cannot look up `{name}` on {url}: {error}"),
            )),
        }
    }
    if findings.iter().all(|f| f.status == Status::Ok) {
        findings.push(Finding::ok(
            "source",
            format!(
                "{} source {url} has every VM and template the selected scenarios clone",
                profile.provider_type
            ),
        ));
    }
    findings
}

/// Why a built-in profile's source is out of reach from a cluster: its host is the embedded lab's.
fn builtin_profile_hint(front: &Front) -> &'static str {
    if front.config.providers.origin == mtv_config::ProvidersOrigin::Builtin {
        "; no providers file was found, and the built-in profiles name the embedded lab's hosts: \
         give --providers-file (against `mtv-tests lab serve`, the file its --providers-out wrote)"
    } else {
        ""
    }
}

/// What a failed login to the source means: a refused user name or password is the credentials
/// finding (the password is sent, never shown); anything else says why the source is out of reach.
fn connect_failure(
    front: &Front,
    url: &str,
    login: Login,
    error: &mtv_providers::SourceError,
) -> Finding {
    let profile = &front.config.profile;
    let finding = match error {
        mtv_providers::SourceError::LoginRefused { .. } => Finding::fail(
            "credentials",
            format!(
                "{url} refuses the username and password of profile '{}' (401); correct them in \
                 the providers file",
                profile.name
            ),
        ),
        other => Finding::fail(
            "source",
            format!(
                "cannot reach the {} source {url} of profile '{}': {other}{}",
                profile.provider_type,
                profile.name,
                builtin_profile_hint(front)
            ),
        ),
    };
    match login {
        Login::Check => finding,
        Login::Skip => Finding::note(finding.check, finding.message),
    }
}
