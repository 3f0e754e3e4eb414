//! The compose file, checked mechanically against the services' own
//! configuration: what `docker compose` would refuse, or start wrongly.
//! `scripts/compose-test.sh` runs it for real where a Docker engine answers,
//! with the override `deploy/test/compose.local.yml`, checked here to change
//! nothing but image names and build sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Applies YAML merge keys (`<<: *anchor`), which the parser leaves as is.
fn merged(node: &Yaml) -> BTreeMap<String, Yaml> {
    let mut out = BTreeMap::new();
    let Yaml::Hash(h) = node else { return out };
    if let Some(base) = h.get(&Yaml::String("<<".into())) {
        out.extend(merged(base));
    }
    for (k, v) in h {
        if let Some(k) = k.as_str().filter(|k| *k != "<<") {
            out.insert(k.to_owned(), v.clone());
        }
    }
    out
}

fn env_names(command: clap::Command) -> BTreeSet<String> {
    command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

fn env_file() -> BTreeMap<String, String> {
    std::fs::read_to_string(root().join("deploy/plaint.env"))
        .expect("deploy/plaint.env")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap_or_default()
}

#[test]
fn the_compose_file_parses_and_matches_the_services_configuration() {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).expect("compose file");
    let docs = YamlLoader::load_from_str(&text).expect("valid YAML");
    let doc = merged(&docs[0]);
    let services = merged(&doc["services"]);
    let volumes: BTreeSet<String> = merged(&doc["volumes"]).into_keys().collect();
    let secrets = merged(&doc["secrets"]);
    let secrets_script =
        std::fs::read_to_string(root().join("scripts/compose-secrets.sh")).expect("secrets script");
    for (secret, node) in &secrets {
        let file = merged(node)["file"]
            .as_str()
            .unwrap_or_else(|| panic!("secret {secret}: not a file"))
            .to_owned();
        let made = file
            .strip_prefix("./deploy/secrets/")
            .unwrap_or_else(|| panic!("secret {secret}: {file} is not under deploy/secrets/"));
        // `nats/intake.nk` is made in a loop over the users: the script names
        // the directory, the user and the extension.
        let (dir, file_name) = made.rsplit_once('/').unwrap_or(("", made));
        let (stem, ext) = file_name.split_once('.').unwrap_or((file_name, ""));
        assert!(
            [dir, stem, ext]
                .iter()
                .all(|part| secrets_script.contains(part)),
            "secret {secret}: scripts/compose-secrets.sh does not make {made}"
        );
    }
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).expect("Dockerfile");
    let intake_env = env_names(plaint_intake::Config::command());
    let router_env = env_names(plaint_router::Config::command());
    let shared: BTreeSet<&str> = ["RUST_LOG", "OTEL_EXPORTER_OTLP_ENDPOINT"].into();

    for key in env_file().keys() {
        assert!(
            intake_env.contains(key) || router_env.contains(key) || shared.contains(key.as_str()),
            "deploy/plaint.env sets {key}, which neither service reads"
        );
    }

    for (name, node) in &services {
        let svc = merged(node);
        // Built images and pulled images alike carry an explicit version tag.
        let image = svc["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no image"));
        let tag = image.rsplit_once(':').map(|(_, t)| t);
        assert!(
            tag.is_some_and(|t| t != "latest" && !t.contains('/')),
            "{name}: image {image} has no pinned tag"
        );
        if let Some(build) = svc.get("build") {
            let build = merged(build);
            let target = build["target"].as_str().expect("build target");
            assert!(
                dockerfile.contains(&format!(" AS {target}")),
                "{name}: Dockerfile has no stage {target}"
            );
            let file = build["dockerfile"].as_str().expect("dockerfile");
            assert!(root().join(file).exists(), "{name}: {file} missing");
        }
        for v in svc
            .get("volumes")
            .and_then(Yaml::as_vec)
            .into_iter()
            .flatten()
        {
            let v = v.as_str().expect("short volume syntax");
            let source = v.split(':').next().unwrap_or_default();
            if source.starts_with("./") {
                assert!(root().join(source).exists(), "{name}: {source} missing");
            } else {
                assert!(
                    volumes.contains(source),
                    "{name}: volume {source} not declared"
                );
            }
        }
        for (dep, cond) in svc.get("depends_on").map(merged).unwrap_or_default() {
            assert_eq!(
                merged(&cond)["condition"].as_str(),
                Some("service_healthy"),
                "{name} must wait for {dep} to be healthy"
            );
            assert!(
                merged(&services[dep.as_str()]).contains_key("healthcheck"),
                "{name} waits for {dep}, which has no health check"
            );
        }

        let env: BTreeMap<String, String> = svc
            .get("environment")
            .map(merged)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let v = v
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_i64().map(|i| i.to_string()));
                (k, v.expect("string env values"))
            })
            .collect();
        let (known, grpc, metrics, binary) = if name.starts_with("intake") {
            (
                &intake_env,
                "INTAKE_GRPC_ADDR",
                "INTAKE_METRICS_ADDR",
                "plaint-intake",
            )
        } else if name.starts_with("router") {
            (
                &router_env,
                "ROUTER_GRPC_ADDR",
                "ROUTER_METRICS_ADDR",
                "plaint-router",
            )
        } else {
            continue;
        };
        for key in env.keys() {
            assert!(
                known.contains(key),
                "{name} sets {key}, which {binary} does not read"
            );
        }
        // Secrets reach a service as files: a *_FILE setting names one of its
        // compose secrets, and no setting holds a secret's value itself.
        let own_secrets: BTreeSet<String> = svc
            .get("secrets")
            .and_then(Yaml::as_vec)
            .into_iter()
            .flatten()
            .map(|s| s.as_str().expect("short secret syntax").to_owned())
            .collect();
        for s in &own_secrets {
            assert!(secrets.contains_key(s), "{name}: secret {s} not declared");
        }
        let mut settings = env_file();
        settings.extend(env.clone());
        for (key, value) in &settings {
            assert!(
                !["PLAINT_ADMIN_KEY", "PLAINT_API_KEY"].contains(&key.as_str())
                    && !key.ends_with("PASSWORD"),
                "{name}: {key} holds a secret in the environment; use a file"
            );
            if let Some(secret) = value.strip_prefix("/run/secrets/") {
                assert!(
                    own_secrets.contains(secret),
                    "{name}: {key} names /run/secrets/{secret}, which it is not given"
                );
            }
        }
        for required in [
            "PLAINT_ADMIN_KEY_FILE",
            "PLAINT_TLS_CERT_FILE",
            "PLAINT_TLS_KEY_FILE",
            "PLAINT_NATS_NKEY_FILE",
        ] {
            let value = settings.get(required);
            assert!(
                value.is_some_and(|v| v.starts_with("/run/secrets/")),
                "{name}: {required} is not a compose secret"
            );
        }
        let ports: Vec<String> = svc["ports"]
            .as_vec()
            .expect("ports")
            .iter()
            .map(|p| p.as_str().expect("port mapping").to_owned())
            .collect();
        let grpc_port = port_of(&env[grpc]).to_owned();
        assert!(
            ports.iter().any(|p| p.ends_with(&format!(":{grpc_port}"))),
            "{name}: gRPC port {grpc_port} not published"
        );
        assert!(env.contains_key(metrics), "{name}: metrics address not set");
        let metrics_port = port_of(&env[metrics]).to_owned();
        assert!(
            !ports
                .iter()
                .any(|p| p.ends_with(&format!(":{metrics_port}"))),
            "{name}: metrics port {metrics_port} is published; it stays on the compose network"
        );
        let check: Vec<&str> = svc["healthcheck"]["test"]
            .as_vec()
            .expect("health check")
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        assert_eq!(
            check,
            ["CMD", binary, "healthcheck"],
            "{name}: health check"
        );
        assert!(env["NATS_URL"].starts_with("nats://"), "{name}: NATS_URL");
    }
    for profile_service in ["nats-c1", "nats-c2", "nats-c3", "prometheus", "jaeger"] {
        assert!(
            services.contains_key(profile_service),
            "{profile_service} missing"
        );
    }
}

#[test]
fn the_test_override_swaps_only_images_and_build_sources() {
    let text = std::fs::read_to_string(root().join("deploy/test/compose.local.yml"))
        .expect("deploy/test/compose.local.yml");
    let docs = YamlLoader::load_from_str(&text).expect("valid YAML");
    let doc = merged(&docs[0]);
    for key in doc.keys() {
        assert!(
            key == "services" || key.starts_with("x-"),
            "the override sets top-level {key}; it may change only services' images and builds"
        );
    }
    let base = std::fs::read_to_string(root().join("docker-compose.yml")).expect("compose file");
    let base =
        merged(&merged(&YamlLoader::load_from_str(&base).expect("valid YAML")[0])["services"]);
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).expect("Dockerfile");
    for (name, node) in merged(&doc["services"]) {
        let base_svc = merged(base.get(&name).unwrap_or_else(|| {
            panic!("the override names {name}, which docker-compose.yml has not")
        }));
        let svc = merged(&node);
        for key in svc.keys() {
            assert!(
                key == "image" || key == "build",
                "{name}: the override sets {key}; it may change only image and build"
            );
        }
        let image = svc["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no image"));
        assert!(
            image.starts_with("plaint-local/")
                && image.rsplit_once(':').is_some_and(|(_, t)| t != "latest"),
            "{name}: {image} is not a pinned local image"
        );
        if let Some(build) = svc.get("build") {
            assert!(
                base_svc.contains_key("build"),
                "{name}: built here, pulled in production"
            );
            for (key, value) in merged(build) {
                assert_eq!(key, "args", "{name}: the override's build sets {key}");
                for arg in merged(&value).keys() {
                    assert!(
                        dockerfile.contains(&format!("ARG {arg}=")),
                        "{name}: build argument {arg} is not an ARG of deploy/Dockerfile"
                    );
                }
            }
        }
    }
}
