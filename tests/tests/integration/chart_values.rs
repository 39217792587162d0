//! The chart's values, rendered with `helm template`: the schema refuses
//! typos and bad values with a readable message, every value is documented,
//! and each option renders what it promises.

use serde_yaml::Value;

use crate::chart::helm;
use keyguard_tests::repo_root;

/// The chart rendered as release `kg` in `keyguard-system` with `--set`
/// pairs: its documents, or helm's error.
pub fn render(sets: &[&str]) -> Result<Vec<Value>, String> {
    let mut args = vec![
        "template",
        "kg",
        "charts/twitter-keyguard",
        "-n",
        "keyguard-system",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    let (ok, out, err) = helm(None, &args);
    if !ok {
        return Err(err);
    }
    Ok(serde_yaml::Deserializer::from_str(&out)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|d: &Value| !d.is_null())
        .collect())
}

pub fn find<'a>(docs: &'a [Value], kind: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["kind"] == kind)
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect()
}

fn container(docs: &[Value]) -> &Value {
    &find(docs, "Deployment").unwrap()["spec"]["template"]["spec"]["containers"][0]
}

fn env(docs: &[Value], name: &str) -> Option<String> {
    container(docs)["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| e["value"].as_str().unwrap_or_default().to_string())
}

macro_rules! refused {
    ($($name:ident: $set:expr => $message:expr;)*) => {$(
        #[test]
        fn $name() {
            let err = render(&[$set]).expect_err(concat!("helm accepted ", $set));
            assert!(err.contains($message), "{err}");
        }
    )*};
}

refused! {
    a_typo_in_a_key_is_refused: "replica=3" => "additional properties 'replica' not allowed";
    a_log_format_outside_the_enum_is_refused: "log.format=xml" => "value must be one of 'plain', 'json'";
    zero_replicas_are_refused: "replicas=0" => "/replicas";
    namespaced_mode_needs_namespaces: "rbac.namespaced=true" => "/rbac/namespaces";
    a_malformed_digest_is_refused: "image.digest=latest" => "/image/digest";
    an_x_api_base_without_a_scheme_is_refused: "xApiBase=api.x.com" => "/xApiBase";
}

/// Every value in values.yaml has a row in the chart README.
#[test]
fn every_value_is_documented() {
    let chart = repo_root().join("charts/twitter-keyguard");
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap()).unwrap();
    let readme = std::fs::read_to_string(chart.join("README.md")).unwrap();
    fn leaves(v: &Value, prefix: &str, out: &mut Vec<String>) {
        match v.as_mapping() {
            Some(m)
                if !m.is_empty()
                    && !["resources", "podSecurityContext", "securityContext"]
                        .contains(&prefix) =>
            {
                for (k, v) in m {
                    let key = k.as_str().unwrap();
                    let path = match prefix {
                        "" => key.to_string(),
                        p => format!("{p}.{key}"),
                    };
                    leaves(v, &path, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut paths = Vec::new();
    leaves(&values, "", &mut paths);
    assert!(paths.len() > 40, "{paths:?}");
    for path in paths {
        assert!(
            readme.contains(&format!("| `{path}` |")),
            "charts/twitter-keyguard/README.md does not document `{path}`"
        );
    }
}

#[test]
fn defaults_are_hardened_with_leader_election_and_a_pdb() {
    let docs = render(&[]).unwrap();
    let pod = &find(&docs, "Deployment").unwrap()["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        env(&docs, "KEYGUARD_LEADER_ELECTION").as_deref(),
        Some("true")
    );
    assert_eq!(
        find(&docs, "PodDisruptionBudget").unwrap()["spec"]["minAvailable"],
        1
    );
    assert!(find(&docs, "Service").is_some());
    for absent in ["ServiceMonitor", "PrometheusRule", "NetworkPolicy"] {
        assert!(find(&docs, absent).is_none(), "{absent} is opt-in");
    }
    let crd = find(&docs, "CustomResourceDefinition").expect("the CRD is a template");
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    // One replica still elects (a rollout briefly runs two) and needs no PDB.
    let one = render(&["replicas=1"]).unwrap();
    assert_eq!(
        env(&one, "KEYGUARD_LEADER_ELECTION").as_deref(),
        Some("true")
    );
    assert!(find(&one, "PodDisruptionBudget").is_none());
}

#[test]
fn options_render_where_they_belong() {
    let docs = render(&[
        "image.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "imagePullSecrets[0].name=regcred",
        "priorityClassName=system-cluster-critical",
        "commonLabels.team=platform",
        "podLabels.tier=ops",
        "podAnnotations.note=hi",
        "deploymentAnnotations.owner=sre",
        "extraEnv[0].name=HTTPS_PROXY",
        "extraEnv[0].value=http://proxy:3128",
        "extraArgs[0]=--x-api-timeout=20",
        "serviceAccount.annotations.iam=role",
        "podSecurityContext.runAsUser=70000",
        "networkPolicy.enabled=true",
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "crds.keep=false",
    ])
    .unwrap();
    let deployment = find(&docs, "Deployment").unwrap();
    let pod = &deployment["spec"]["template"];
    let c = container(&docs);
    assert_eq!(
        c["image"],
        "ghcr.io/twitter-keyguard/keyguard-operator@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    );
    assert_eq!(pod["spec"]["imagePullSecrets"][0]["name"], "regcred");
    assert_eq!(pod["spec"]["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 70000);
    assert_eq!(pod["metadata"]["labels"]["tier"], "ops");
    assert_eq!(pod["metadata"]["annotations"]["note"], "hi");
    assert_eq!(deployment["metadata"]["annotations"]["owner"], "sre");
    assert_eq!(
        env(&docs, "HTTPS_PROXY").as_deref(),
        Some("http://proxy:3128")
    );
    assert_eq!(c["args"][1], "--x-api-timeout=20");
    for doc in &docs {
        assert_eq!(
            doc["metadata"]["labels"]["team"], "platform",
            "commonLabels on {:?}",
            doc["kind"]
        );
    }
    assert_eq!(
        find(&docs, "ServiceAccount").unwrap()["metadata"]["annotations"]["iam"],
        "role"
    );
    let monitor = find(&docs, "ServiceMonitor").unwrap();
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], true);
    assert!(find(&docs, "PrometheusRule").is_some());
    assert_eq!(
        find(&docs, "NetworkPolicy").unwrap()["spec"]["policyTypes"],
        serde_yaml::to_value(["Ingress", "Egress"]).unwrap()
    );
    let crd = find(&docs, "CustomResourceDefinition").unwrap();
    assert!(crd["metadata"]["annotations"]["helm.sh/resource-policy"].is_null());
}

#[test]
fn toggles_leave_out_what_you_manage_yourself() {
    let docs = render(&[
        "crds.enabled=false",
        "rbac.create=false",
        "serviceAccount.create=false",
        "serviceAccount.name=platform-keyguard",
        "admissionPolicy.enabled=false",
        "metrics.service.enabled=false",
    ])
    .unwrap();
    assert_eq!(kinds(&docs), vec!["PodDisruptionBudget", "Deployment"]);
    assert_eq!(
        find(&docs, "Deployment").unwrap()["spec"]["template"]["spec"]["serviceAccountName"],
        "platform-keyguard"
    );
    let err = render(&["serviceAccount.create=false"]).unwrap_err();
    assert!(err.contains("serviceAccount.name is required"), "{err}");
}

/// Namespaced mode: no cluster-wide Secret, RBAC or workload rights; a
/// RoleBinding per listed namespace to the per-namespace ClusterRole.
#[test]
fn namespaced_mode_grants_secret_rights_only_per_namespace() {
    let docs = render(&["rbac.namespaced=true", "rbac.namespaces={team,prod}"]).unwrap();
    let cluster_role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "kg")
        .unwrap();
    let text = serde_yaml::to_string(&cluster_role["rules"]).unwrap();
    for cluster_wide_never in ["secrets", "roles", "deployments", "events"] {
        assert!(
            !text.contains(cluster_wide_never),
            "cluster-wide {cluster_wide_never} in namespaced mode:\n{text}"
        );
    }
    let bindings: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "RoleBinding" && d["roleRef"]["name"] == "kg-namespace")
        .map(|d| d["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(bindings, vec!["team", "prod"]);
    assert_eq!(
        env(&docs, "KEYGUARD_WATCH_NAMESPACES").as_deref(),
        Some("team,prod")
    );
}

/// Every map value of the chart, given content, still renders, and lands
/// where it belongs: `metrics.prometheusRule.labels` (kube-prometheus-stack
/// selects rules by `release:`) once swallowed two alerts into the labels
/// block and broke `helm template`.
#[test]
fn every_map_value_with_content_renders() {
    let values: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("charts/twitter-keyguard/values.yaml")).unwrap(),
    )
    .unwrap();
    fn empty_maps(v: &Value, prefix: &str, out: &mut Vec<String>) {
        let Some(m) = v.as_mapping() else { return };
        if m.is_empty() && !prefix.is_empty() {
            out.push(prefix.to_string());
        }
        for (k, v) in m {
            let key = k.as_str().unwrap();
            let path = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            empty_maps(v, &path, out);
        }
    }
    let mut maps = Vec::new();
    empty_maps(&values, "", &mut maps);
    assert!(
        maps.iter().any(|m| m == "metrics.prometheusRule.labels"),
        "{maps:?}"
    );
    let mut sets: Vec<String> = [
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "networkPolicy.enabled=true",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Keys safe in any map (labels, annotations, selectors): a label-like
    // key and value, another for each map (commonLabels and podLabels both
    // land on the pod: one key in both would be a duplicate).
    sets.extend(
        maps.iter()
            .enumerate()
            .map(|(i, m)| format!("{m}.keyguard-test-{i}=yes")),
    );
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let docs = render(&sets).unwrap_or_else(|e| panic!("{maps:?} with content: {e}"));
    let rule = find(&docs, "PrometheusRule").unwrap();
    let i = maps
        .iter()
        .position(|m| m == "metrics.prometheusRule.labels")
        .unwrap();
    assert_eq!(
        rule["metadata"]["labels"][format!("keyguard-test-{i}").as_str()],
        "yes"
    );
    let template = std::fs::read_to_string(
        repo_root().join("charts/twitter-keyguard/templates/prometheusrule.yaml"),
    )
    .unwrap();
    let alerts = rule["spec"]["groups"][0]["rules"].as_sequence().unwrap();
    assert_eq!(
        alerts.len(),
        template.matches("- alert: ").count(),
        "every alert of the template is in the rules, none in the labels"
    );
}

/// Roles for people, aggregated into the cluster's view, edit and admin
/// roles; `edit` never includes status, which only the operator writes.
#[test]
fn user_roles_aggregate_into_view_and_edit_without_status() {
    let docs = render(&[]).unwrap();
    let role = |suffix: &str| {
        docs.iter()
            .find(|d| {
                d["kind"] == "ClusterRole"
                    && d["metadata"]["name"] == format!("kg-twitter-keyguard-{suffix}")
            })
            .or_else(|| {
                docs.iter().find(|d| {
                    d["kind"] == "ClusterRole"
                        && d["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .ends_with(&format!("-{suffix}"))
                })
            })
            .unwrap_or_else(|| panic!("no -{suffix} ClusterRole"))
            .clone()
    };
    let view = role("view");
    let edit = role("edit");
    let aggregates = |r: &Value, to: &str| {
        r["metadata"]["labels"][format!("rbac.authorization.k8s.io/aggregate-to-{to}").as_str()]
            == "true"
    };
    assert!(aggregates(&view, "view") && aggregates(&view, "edit") && aggregates(&view, "admin"));
    assert!(aggregates(&edit, "edit") && aggregates(&edit, "admin") && !aggregates(&edit, "view"));
    for r in [&view, &edit] {
        let text = serde_yaml::to_string(&r["rules"]).unwrap();
        assert!(text.contains("twittercredentials"), "{text}");
        assert!(!text.contains("status"), "no status for people: {text}");
    }
    let docs = render(&["rbac.aggregateToUserRoles=false"]).unwrap();
    assert!(!docs.iter().any(|d| {
        d["kind"] == "ClusterRole"
            && d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .ends_with("-edit")
    }));
}

/// As a dependency of an umbrella chart (app-of-apps), where Helm passes
/// `global` and the umbrella toggles it with `enabled`: the schema accepts
/// both and the chart renders.
#[test]
fn the_chart_works_as_a_subchart() {
    let dir = tempfile::tempdir().unwrap();
    let umbrella = dir.path().join("platform");
    let charts = umbrella.join("charts");
    std::fs::create_dir_all(&charts).unwrap();
    let copy = std::process::Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("charts/twitter-keyguard"))
        .arg(&charts)
        .status()
        .unwrap();
    assert!(copy.success());
    let version = serde_yaml::from_str::<Value>(
        &std::fs::read_to_string(repo_root().join("charts/twitter-keyguard/Chart.yaml")).unwrap(),
    )
    .unwrap()["version"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(
        umbrella.join("Chart.yaml"),
        format!(
            "apiVersion: v2\nname: platform\nversion: 0.1.0\ndependencies:\n  - name: twitter-keyguard\n    version: \"{version}\"\n    condition: twitter-keyguard.enabled\n"
        ),
    )
    .unwrap();
    std::fs::write(
        umbrella.join("values.yaml"),
        "global:\n  imageRegistry: registry.example\ntwitter-keyguard:\n  enabled: true\n  replicas: 2\n",
    )
    .unwrap();
    let path = umbrella.to_str().unwrap();
    let (ok, out, err) = helm(
        None,
        &["template", "platform", path, "-n", "keyguard-system"],
    );
    assert!(ok, "the chart as a subchart: {err}");
    assert!(out.contains("kind: Deployment"), "{out}");
    let (ok, out, _) = helm(
        None,
        &[
            "template",
            "platform",
            path,
            "--set",
            "twitter-keyguard.enabled=false",
        ],
    );
    assert!(
        ok && !out.contains("kind: Deployment"),
        "disabled by the umbrella: {out}"
    );
}

/// A corporate proxy's CA: the bundle is mounted read-only and named by
/// SSL_CERT_FILE, which the operator reads (tests/integration/x_api_tls.rs
/// proves the client then trusts it); extra volumes land beside it.
#[test]
fn a_ca_bundle_is_mounted_and_named_by_ssl_cert_file() {
    let docs = render(&[
        "caBundle.configMap=corp-ca",
        "caBundle.key=bundle.pem",
        "extraVolumes[0].name=scratch",
        "extraVolumes[0].emptyDir.medium=Memory",
        "extraVolumeMounts[0].name=scratch",
        "extraVolumeMounts[0].mountPath=/scratch",
    ])
    .unwrap();
    assert_eq!(
        env(&docs, "SSL_CERT_FILE").as_deref(),
        Some("/etc/keyguard/ca/bundle.pem")
    );
    let c = container(&docs);
    let mounts = serde_yaml::to_string(&c["volumeMounts"]).unwrap();
    assert!(
        mounts.contains("/etc/keyguard/ca") && mounts.contains("/scratch"),
        "{mounts}"
    );
    let pod = &find(&docs, "Deployment").unwrap()["spec"]["template"]["spec"];
    let volumes = serde_yaml::to_string(&pod["volumes"]).unwrap();
    assert!(
        volumes.contains("corp-ca") && volumes.contains("scratch"),
        "{volumes}"
    );
    let plain = render(&[]).unwrap();
    assert!(env(&plain, "SSL_CERT_FILE").is_none());
    assert!(container(&plain)["volumeMounts"].is_null());
}

/// Every alert links a runbook that exists: a section of docs/runbooks.md
/// named after it.
#[test]
fn every_alert_links_a_runbook_section_that_exists() {
    let docs = render(&["metrics.prometheusRule.enabled=true"]).unwrap();
    let runbooks = std::fs::read_to_string(repo_root().join("docs/runbooks.md")).unwrap();
    let rules = find(&docs, "PrometheusRule").unwrap()["spec"]["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .clone();
    assert!(rules.len() >= 9);
    for rule in rules {
        let alert = rule["alert"].as_str().unwrap();
        let url = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_default();
        assert!(
            url.ends_with(&format!("docs/runbooks.md#{}", alert.to_lowercase())),
            "{alert}: {url}"
        );
        assert!(
            runbooks.contains(&format!("\n## {alert}\n")),
            "docs/runbooks.md has no section for {alert}"
        );
    }
}

/// The ServiceMonitor where a Prometheus looks, with relabelings.
#[test]
fn the_service_monitor_takes_a_namespace_and_relabelings() {
    let docs = render(&[
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.namespace=monitoring",
        "metrics.serviceMonitor.relabelings[0].targetLabel=cluster",
        "metrics.serviceMonitor.relabelings[0].replacement=prod-eu",
        "metrics.serviceMonitor.metricRelabelings[0].action=drop",
        "metrics.serviceMonitor.metricRelabelings[0].regex=keyguard_reconcile_duration_seconds_bucket",
    ])
    .unwrap();
    let monitor = find(&docs, "ServiceMonitor").unwrap();
    assert_eq!(monitor["metadata"]["namespace"], "monitoring");
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"][0],
        "keyguard-system"
    );
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["relabelings"][0]["targetLabel"], "cluster");
    assert_eq!(endpoint["metricRelabelings"][0]["action"], "drop");
}

/// The ServiceMonitor's endpoint, rendered with `sets`.
fn monitor_endpoint(sets: &[&str]) -> Value {
    let mut all = vec!["metrics.serviceMonitor.enabled=true"];
    all.extend_from_slice(sets);
    let docs = render(&all).unwrap();
    find(&docs, "ServiceMonitor").unwrap()["spec"]["endpoints"][0].clone()
}

/// A Prometheus that denies file access through ServiceMonitors refuses
/// `bearerTokenFile`: with `bearerTokenSecret` the token comes from a
/// Secret (`authorization.credentials`), and only then.
#[test]
fn the_service_monitor_can_send_a_token_from_a_secret() {
    let endpoint = monitor_endpoint;
    let default = endpoint(&[]);
    assert_eq!(
        default["bearerTokenFile"],
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    );
    assert!(default["authorization"].is_null(), "{default:?}");

    let from_secret = endpoint(&["metrics.serviceMonitor.bearerTokenSecret.name=prometheus-token"]);
    assert!(from_secret["bearerTokenFile"].is_null(), "{from_secret:?}");
    assert_eq!(from_secret["authorization"]["type"], "Bearer");
    assert_eq!(
        from_secret["authorization"]["credentials"]["name"],
        "prometheus-token"
    );
    assert_eq!(from_secret["authorization"]["credentials"]["key"], "token");

    let refused = render(&[
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.bearerTokenSecret.nmae=typo",
    ]);
    assert!(refused.is_err(), "a typo in the Secret's fields is refused");
}

/// Prometheus sends its ServiceAccount token to the metrics endpoint: it
/// checks the certificate whenever there is a CA to check it against.
#[test]
fn the_service_monitor_checks_the_certificate_it_can() {
    let tls = |sets: &[&str]| monitor_endpoint(sets)["tlsConfig"].clone();
    let self_signed = tls(&[]);
    assert_eq!(self_signed["insecureSkipVerify"], true, "{self_signed:?}");

    let issued = tls(&["metrics.tlsSecret=keyguard-metrics-tls"]);
    assert!(issued["insecureSkipVerify"].is_null(), "{issued:?}");
    assert_eq!(issued["ca"]["secret"]["name"], "keyguard-metrics-tls");
    assert_eq!(issued["ca"]["secret"]["key"], "ca.crt");
    assert_eq!(issued["serverName"], "kg-metrics.keyguard-system.svc");

    let given = tls(&[
        "metrics.tlsSecret=keyguard-metrics-tls",
        "metrics.serviceMonitor.tlsConfig.serverName=metrics.example",
        "metrics.serviceMonitor.tlsConfig.ca.configMap.name=cluster-ca",
        "metrics.serviceMonitor.tlsConfig.ca.configMap.key=ca.crt",
    ]);
    assert_eq!(given["serverName"], "metrics.example");
    assert_eq!(given["ca"]["configMap"]["name"], "cluster-ca");
    assert!(given["ca"]["secret"].is_null(), "used as given: {given:?}");
}
