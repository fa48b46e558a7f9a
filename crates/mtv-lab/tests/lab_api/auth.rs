//! Authentication and authorization with real clients: a plain HTTP client (Python's urllib, trusting
//! only the lab's CA), kubectl with ServiceAccount tokens (`kubectl create token`, legacy token Secrets,
//! `kubectl auth can-i`, `kubectl auth whoami`), the Python `kubernetes` client verifying the lab's CA,
//! and the inventory: 401 through the service proxy, answered through its Route.

use mtv_lab::{LabOptions, LabServer};
use serde_json::Value;

use crate::kubectl::{Kubectl, kubectl_binary, path_str, setup};

/// A Python script run off the async runtime (the lab serves on it meanwhile).
async fn python_ok(script: &'static str, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        mtv_test_peers::run_python_ok(script, &args, &[])
    })
    .await
    .expect("the python peer's task")
}

/// GETs each path (argv[3:]) with urllib, verifying the lab's certificate against its CA file (argv[1])
/// only, with the token in argv[2] ("-" for none); prints `<status> <body>` per line.
const URLLIB_GET: &str = r#"
import json, ssl, sys, urllib.request, urllib.error
ca, token, base, paths = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
context = ssl.create_default_context(cafile=ca)
for path in paths:
    request = urllib.request.Request(base + path)
    if token != "-":
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, context=context) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    print(status, json.dumps(body.decode()))
# Without the lab's CA the certificate is not trusted.
try:
    urllib.request.urlopen(base + paths[0], context=ssl.create_default_context())
    print("UNVERIFIED-OK")
except urllib.error.URLError as error:
    print("untrusted", type(error.reason).__name__)
"#;

fn ca_file(kubectl: &Kubectl, lab: &LabServer) -> String {
    path_str(&kubectl.write("ca.crt", lab.ca_pem())).to_string()
}

/// `(status, body)` per line of [`URLLIB_GET`]'s output.
fn answers(out: &str) -> Vec<(u16, String)> {
    out.lines()
        .filter_map(|line| {
            let (status, body) = line.split_once(' ')?;
            Some((status.parse().ok()?, serde_json::from_str(body).ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_get_401_as_a_kubernetes_status() {
    let Some((lab, kubectl)) = setup().await else {
        return;
    };
    let ca = ca_file(&kubectl, &lab);
    let paths = [
        "/api/v1/namespaces/default/secrets",
        "/apis",
        "/lab/v1/stats",
    ];
    for token in ["-", "not-a-token"] {
        let args = [ca.clone(), token.into(), lab.base_url()]
            .into_iter()
            .chain(paths.iter().map(|p| p.to_string()))
            .collect();
        let out = python_ok(URLLIB_GET, args).await;
        let got = answers(&out);
        assert_eq!(got.len(), paths.len(), "{out}");
        for (status, body) in got {
            assert_eq!(status, 401, "{token}: {body}");
            let status: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(status["kind"], "Status");
            assert_eq!(status["reason"], "Unauthorized");
            assert_eq!(status["code"], 401);
        }
        assert!(out.contains("untrusted"), "{out}");
    }
    // The admin token of the kubeconfig reaches everything; health probes need no token.
    let args = vec![
        ca.clone(),
        lab.admin_token().to_string(),
        lab.base_url(),
        "/api/v1/namespaces/default/secrets".into(),
        "/lab/v1/stats".into(),
    ];
    let got = answers(&python_ok(URLLIB_GET, args).await);
    assert!(got.iter().all(|(status, _)| *status == 200), "{got:?}");
    let args = vec![ca, "-".into(), lab.base_url(), "/healthz".into()];
    assert_eq!(answers(&python_ok(URLLIB_GET, args).await)[0].0, 200);
}

/// Two namespaces with a Secret each, and the ServiceAccount `team-a/robot` allowed to read Secrets in
/// `team-a` only (a Role and a RoleBinding, as kubectl's imperative commands make them).
async fn team_a_robot(kubectl: &Kubectl) {
    for ns in ["team-a", "team-b"] {
        kubectl.ok(&["create", "namespace", ns]).await;
        kubectl
            .ok(&[
                "create",
                "secret",
                "generic",
                "creds",
                "-n",
                ns,
                "--from-literal=password=p",
            ])
            .await;
    }
    kubectl
        .ok(&["create", "serviceaccount", "robot", "-n", "team-a"])
        .await;
    kubectl
        .ok(&[
            "create",
            "role",
            "secret-reader",
            "-n",
            "team-a",
            "--verb=get,list,watch",
            "--resource=secrets",
        ])
        .await;
    kubectl
        .ok(&[
            "create",
            "rolebinding",
            "robot-reads-secrets",
            "-n",
            "team-a",
            "--role=secret-reader",
            "--serviceaccount=team-a:robot",
        ])
        .await;
}

const FORBIDDEN_IN_TEAM_B: &str = "secrets \"creds\" is forbidden: User \"system:serviceaccount:team-a:robot\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team-b\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_bound_to_a_role_reads_only_its_own_namespaces_secrets() {
    let Some((_lab, kubectl)) = setup().await else {
        return;
    };
    team_a_robot(&kubectl).await;
    // TokenRequest.
    let token = kubectl
        .ok(&["create", "token", "robot", "-n", "team-a"])
        .await
        .trim()
        .to_string();
    let as_robot = |args: &[&str]| {
        let mut all = vec!["--token", token.as_str()];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let kubectl = &kubectl;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            kubectl.run(&args).await
        }
    };
    let own = run(as_robot(&[
        "get", "secret", "creds", "-n", "team-a", "-o", "name",
    ]))
    .await;
    assert!(own.status.success(), "{own:?}");
    assert_eq!(String::from_utf8_lossy(&own.stdout).trim(), "secret/creds");
    let other = run(as_robot(&["get", "secret", "creds", "-n", "team-b"])).await;
    assert!(!other.status.success());
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(
        stderr.contains("Forbidden") && stderr.contains(FORBIDDEN_IN_TEAM_B),
        "{stderr}"
    );
    // `kubectl auth can-i` (SelfSubjectAccessReview) answers as RBAC says, with its exit code.
    let yes = run(as_robot(&[
        "auth", "can-i", "list", "secrets", "-n", "team-a",
    ]))
    .await;
    assert!(yes.status.success(), "{yes:?}");
    assert_eq!(String::from_utf8_lossy(&yes.stdout).trim(), "yes");
    for denied in [
        &["auth", "can-i", "get", "secrets", "-n", "team-b"][..],
        &["auth", "can-i", "delete", "secrets", "-n", "team-a"],
        &["auth", "can-i", "list", "namespaces"],
    ] {
        let no = run(as_robot(denied)).await;
        assert!(!no.status.success(), "{denied:?}");
        assert_eq!(
            String::from_utf8_lossy(&no.stdout).trim(),
            "no",
            "{denied:?}"
        );
    }
    assert_eq!(
        kubectl
            .ok(&["auth", "can-i", "*", "*", "--all-namespaces"])
            .await
            .trim(),
        "yes"
    );
    // SelfSubjectReview.
    let whoami = run(as_robot(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]))
    .await;
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout).trim(),
        "system:serviceaccount:team-a:robot",
        "{whoami:?}"
    );
    // The token is good only while its ServiceAccount exists.
    kubectl
        .ok(&["delete", "serviceaccount", "robot", "-n", "team-a"])
        .await;
    let gone = run(as_robot(&["get", "secret", "creds", "-n", "team-a"])).await;
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("Unauthorized"),
        "{gone:?}"
    );
}

const LEGACY_TOKEN_SECRET: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: robot-token
  namespace: team-a
  annotations:
    kubernetes.io/service-account.name: robot
type: kubernetes.io/service-account-token
"#;

const REVIEWS: &str = r#"apiVersion: authentication.k8s.io/v1
kind: TokenReview
spec:
  token: TOKEN
---
apiVersion: authorization.k8s.io/v1
kind: SubjectAccessReview
spec:
  user: system:serviceaccount:team-a:robot
  groups: [system:serviceaccounts, system:authenticated]
  resourceAttributes: {namespace: team-b, verb: get, resource: secrets}
---
apiVersion: authorization.k8s.io/v1
kind: SubjectAccessReview
spec:
  user: system:serviceaccount:team-a:robot
  resourceAttributes: {namespace: team-a, verb: get, resource: secrets, name: creds}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_token_secrets_and_the_review_kinds_work_as_on_kubernetes() {
    let Some((lab, kubectl)) = setup().await else {
        return;
    };
    team_a_robot(&kubectl).await;
    let file = kubectl.write("token-secret.yaml", LEGACY_TOKEN_SECRET);
    kubectl.ok(&["apply", "-f", path_str(&file)]).await;
    let secret: Value = kubectl
        .json(&["get", "secret", "robot-token", "-n", "team-a"])
        .await;
    let decode = |key: &str| {
        use base64::Engine;
        let data = secret["data"][key].as_str().unwrap_or_default();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap(),
        )
        .unwrap()
    };
    let token = decode("token");
    assert!(!token.is_empty(), "{secret}");
    assert_eq!(decode("namespace"), "team-a");
    assert_eq!(decode("ca.crt"), lab.ca_pem());
    let out = kubectl
        .run(&[
            "--token", &token, "get", "secret", "creds", "-n", "team-a", "-o", "name",
        ])
        .await;
    assert!(out.status.success(), "{out:?}");
    // TokenReview and SubjectAccessReview, created as any object is.
    let file = kubectl.write("reviews.yaml", &REVIEWS.replace("TOKEN", &token));
    let printed = kubectl
        .ok(&["create", "-f", path_str(&file), "-o", "json"])
        .await;
    // One JSON document per object created.
    let items: Vec<Value> = serde_json::Deserializer::from_str(&printed)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(items.len(), 3, "{printed}");
    assert_eq!(items[0]["status"]["authenticated"], true, "{}", items[0]);
    assert_eq!(
        items[0]["status"]["user"]["username"],
        "system:serviceaccount:team-a:robot"
    );
    assert_eq!(items[1]["status"]["allowed"], false, "{}", items[1]);
    assert_eq!(items[2]["status"]["allowed"], true, "{}", items[2]);
    assert!(
        items[2]["status"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("robot-reads-secrets"),
        "{}",
        items[2]
    );
    // Deleting the Secret revokes its token.
    kubectl
        .ok(&["delete", "secret", "robot-token", "-n", "team-a"])
        .await;
    let revoked = kubectl
        .run(&["--token", &token, "get", "secret", "creds", "-n", "team-a"])
        .await;
    assert!(!revoked.status.success());
}

/// The Python `kubernetes` client from the lab's kubeconfig (CA verified, no insecure flag): the admin
/// lists namespaces and issues a ServiceAccount token (TokenRequest); with that token it reads its own
/// namespace's Secret and gets 403 in the other; a SelfSubjectAccessReview says the same.
const PYTHON_CLIENT: &str = r#"
import sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
kubeconfig = sys.argv[1]
admin = config.new_client_from_config(config_file=kubeconfig)
assert admin.configuration.verify_ssl, "the client must verify the lab's certificate"
core = client.CoreV1Api(admin)
names = [ns.metadata.name for ns in core.list_namespace().items]
assert "team-a" in names, names
request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
token = core.create_namespaced_service_account_token("robot", "team-a", request).status.token
robot_config = client.Configuration()
robot_config.host = admin.configuration.host
robot_config.ssl_ca_cert = admin.configuration.ssl_ca_cert
robot_config.api_key = {"authorization": "Bearer " + token}
robot = client.ApiClient(robot_config)
robot_core = client.CoreV1Api(robot)
print("own", robot_core.read_namespaced_secret("creds", "team-a").metadata.name)
try:
    robot_core.read_namespaced_secret("creds", "team-b")
    print("other allowed")
except ApiException as error:
    print("other", error.status, error.reason)
review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
    resource_attributes=client.V1ResourceAttributes(namespace="team-b", verb="get", resource="secrets")))
print("can-i team-b", client.AuthorizationV1Api(robot).create_self_subject_access_review(review).status.allowed)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_verifies_the_lab_ca_and_meets_rbac() {
    let Some((_lab, kubectl)) = setup().await else {
        return;
    };
    team_a_robot(&kubectl).await;
    let kubeconfig = path_str(&kubectl.dir.join("kubeconfig")).to_string();
    let out = python_ok(PYTHON_CLIENT, vec![kubeconfig]).await;
    assert!(out.contains("own creds"), "{out}");
    assert!(out.contains("other 403 Forbidden"), "{out}");
    assert!(out.contains("can-i team-b False"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_answers_401_through_the_service_proxy_and_serves_its_route() {
    let Some(binary) = kubectl_binary() else {
        return;
    };
    let lab = LabServer::start(LabOptions {
        inventory_sync_delay: std::time::Duration::ZERO,
        ..LabOptions::default()
    })
    .await
    .unwrap();
    let kubectl = Kubectl::new(binary, &lab);
    // As on a cluster: the API server authenticates kubectl, then drops the token before proxying.
    let stderr = kubectl
        .fails(&[
            "get",
            "--raw",
            "/api/v1/namespaces/openshift-mtv/services/https:forklift-inventory:8443/proxy/providers",
        ])
        .await;
    assert!(
        stderr.contains("Unauthorized") || stderr.contains("provide credentials"),
        "{stderr}"
    );
    // The Route in the MTV namespace leads to the inventory, which checks the caller's own token.
    let route: Value = kubectl
        .json(&["get", "route", "forklift-inventory", "-n", "openshift-mtv"])
        .await;
    let host = route["status"]["ingress"][0]["host"].as_str().unwrap();
    assert_eq!(Some(format!("https://{host}")), lab.inventory_route_url());
    let ca = ca_file(&kubectl, &lab);
    let base = format!("https://{host}");
    let with_admin = answers(
        &python_ok(
            URLLIB_GET,
            vec![
                ca.clone(),
                lab.admin_token().into(),
                base.clone(),
                "/providers".into(),
            ],
        )
        .await,
    );
    assert_eq!(with_admin[0].0, 200, "{with_admin:?}");
    let listing: Value = serde_json::from_str(&with_admin[0].1).unwrap();
    assert_eq!(listing["openshift"][0]["name"], "host", "{listing}");
    let anonymous = answers(
        &python_ok(
            URLLIB_GET,
            vec![ca.clone(), "-".into(), base.clone(), "/providers".into()],
        )
        .await,
    );
    assert_eq!(anonymous[0].0, 401);
    // A ServiceAccount without a role may not list Providers (Forklift's SubjectAccessReview).
    kubectl
        .ok(&["create", "serviceaccount", "nobody", "-n", "default"])
        .await;
    let token = kubectl
        .ok(&["create", "token", "nobody", "-n", "default"])
        .await
        .trim()
        .to_string();
    let refused = answers(&python_ok(URLLIB_GET, vec![ca, token, base, "/providers".into()]).await);
    assert_eq!(refused[0].0, 403);
}
