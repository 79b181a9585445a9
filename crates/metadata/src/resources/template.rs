//! Group templates of OpenCHAMI v0.2's metadata-service: Jinja-like text (upstream renders
//! with pongo2; Skyport with minijinja, which reads the same `{{ var }}`, `{% for %}`,
//! `{% if %}` and filter syntax) checked when a Group is written and rendered for a member
//! node. Rendering is bounded: a step budget (a template is code an admin wrote, and a loop
//! must not hold the server) and a cap on the output.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Steps a render may take (minijinja's fuel): far beyond any cloud-config template, short of
/// a loop that would hold a request for seconds.
pub const MAX_FUEL: u64 = 200_000;
/// Largest rendered document (cloud-init user data is capped at 16 KiB by several clouds; a
/// site's group file is usually a few KiB).
pub const MAX_OUTPUT: usize = 1024 * 1024;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template render error: {0}")]
    Render(String),
    #[error("template render error: the output exceeds {MAX_OUTPUT} bytes")]
    TooLarge,
}

/// `template` rendered with `ctx`.
pub fn render(template: &str, ctx: &Value) -> Result<String, TemplateError> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(MAX_FUEL));
    // Upstream keeps text verbatim: no HTML escaping, the trailing newline kept.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| TemplateError::Render(e.to_string()))?;
    env.set_syntax(syntax);
    let out = env
        .render_str(template, minijinja::value::Serde(ctx))
        .map_err(|e| TemplateError::Render(e.to_string()))?;
    if out.len() > MAX_OUTPUT {
        return Err(TemplateError::TooLarge);
    }
    Ok(out)
}

/// The variables a template reads (`{{ a.b }}` and `{% for x in a.b %}`), as upstream's scan
/// finds them: expressions with filters or operators are not listed.
pub fn required_variables(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    };
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else { break };
        let v = after[..j].trim();
        if ident(v) {
            out.push(v.to_string());
        }
        rest = &after[j + 2..];
    }
    let mut rest = template;
    while let Some(i) = rest.find("{%") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("%}") else { break };
        let words: Vec<&str> = after[..j].split_whitespace().collect();
        if let ["for", .., "in", v] = words.as_slice()
            && ident(v)
        {
            out.push((*v).to_string());
        }
        rest = &after[j + 2..];
    }
    out.sort();
    out.dedup();
    out
}

/// The context a template is checked against: every key a node's context has, with sample
/// values (upstream's sample context, the superset of its revisions), and the group's own
/// metadata.
pub fn sample_context(meta: &BTreeMap<String, String>) -> Value {
    let vendor = json!({
        "version": "1.0", "cloud_init_base_url": "http://metadata.example/metadata-service",
        "cluster_name": "demo", "nid": 1, "role": "Compute", "mac": "02:00:00:00:00:01",
        "interfaces": [], "groups": {"rack1": {"description": "rack 1", "syslog_forwarder": "10.0.0.1"}},
    });
    let v1 = json!({
        "cloud_name": "OpenCHAMI", "availability_zone": "az1", "instance_id": "x1000c0s0b0n0",
        "local_hostname": "de0001", "region": "region1", "hostname": "de0001",
        "local_ipv4": "10.0.0.2", "cloud_provider": "OpenCHAMI", "public_keys": ["ssh-ed25519 AAAA sample"],
        "instance_type": "", "vendor_data": vendor,
    });
    let meta_data = json!({
        "instance-id": "x1000c0s0b0n0", "local-hostname": "de0001", "hostname": "de0001",
        "cluster-name": "demo", "instance_data": {"v1": v1},
    });
    let mut flat = json!({
        "hostname": "de0001", "local_hostname": "de0001", "instance_id": "x1000c0s0b0n0",
        "nid": 1, "role": "Compute", "mac": "02:00:00:00:00:01", "ip": "10.0.0.2",
        "interfaces": [], "cluster_name": "demo", "base_url": "http://metadata.example/metadata-service",
        "cloud_provider": "OpenCHAMI", "region": "region1", "availability_zone": "az1",
        "public_keys": ["ssh-ed25519 AAAA sample"], "domain": "example", "os_version": "",
        "tags": [], "ssh_keys": [], "cloud_name": "OpenCHAMI", "local_ipv4": "10.0.0.2",
        "instance_type": "", "vendor_data": vendor, "meta_data": meta_data,
    });
    with_ds_and_meta(&mut flat, meta);
    flat
}

/// Adds `ds` (the same data again, as upstream's newer revisions and the migration guide's
/// templates read it) and the group's metadata at the top level (overriding built-ins).
pub fn with_ds_and_meta(ctx: &mut Value, meta: &BTreeMap<String, String>) {
    let ds = ctx.clone();
    if let Value::Object(o) = ctx {
        o.insert("ds".into(), ds);
        for (k, v) in meta {
            o.insert(k.clone(), Value::from(v.clone()));
        }
    }
}

/// Whether dotted path `p` resolves in `ctx`.
fn resolves(ctx: &Value, p: &str) -> bool {
    let mut v = ctx;
    for seg in p.split('.') {
        match v.get(seg) {
            Some(x) => v = x,
            None => return false,
        }
    }
    true
}

/// Upstream's checks of a group template, in its order: every variable it reads resolves in
/// the sample context, it renders, and what it renders is YAML. Returns the variables.
pub fn check(template: &str, meta: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    let vars = required_variables(template);
    let ctx = sample_context(meta);
    let missing: Vec<&str> = vars
        .iter()
        .map(String::as_str)
        .filter(|v| !resolves(&ctx, v))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing required variables: [{}]",
            missing.join(" ")
        ));
    }
    let out = render(template, &ctx).map_err(|e| e.to_string())?;
    serde_norway::from_str::<serde_norway::Value>(&out)
        .map_err(|e| format!("template YAML invalid after rendering: {e}"))?;
    Ok(vars)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn variables_are_scanned_as_upstream_scans_them() {
        let t = "#cloud-config\nhostname: {{ hostname }}\n{% for k in ds.meta_data.instance_data.v1.public_keys %}- {{ k }}\n{% endfor %}x: {{ a | upper }}\n";
        assert_eq!(
            required_variables(t),
            vec!["ds.meta_data.instance_data.v1.public_keys", "hostname", "k"]
        );
    }

    #[test]
    fn templates_are_checked_and_rendered() {
        let meta = BTreeMap::from([("scheduler".to_string(), "slurm".to_string())]);
        assert!(
            check(
                "#cloud-config\nrunner: {{ scheduler }}\nhost: {{ hostname }}\n",
                &meta
            )
            .is_ok()
        );
        assert_eq!(
            check("#cloud-config\nx: {{ nope }}\ny: {{ also.not }}\n", &meta).unwrap_err(),
            "missing required variables: [also.not nope]"
        );
        assert!(
            check("{% if %}", &meta)
                .unwrap_err()
                .starts_with("template render error: ")
        );
        assert!(
            check("a: [unclosed\n", &meta)
                .unwrap_err()
                .starts_with("template YAML invalid after rendering: ")
        );
        let out = render(
            "#cloud-config\nhostname: {{ hostname }}\nfqdn: {{ hostname }}.testcluster.local\n",
            &json!({"hostname": "tc1000"}),
        )
        .unwrap();
        assert_eq!(
            out,
            "#cloud-config\nhostname: tc1000\nfqdn: tc1000.testcluster.local\n"
        );
    }

    #[test]
    fn a_runaway_template_is_stopped() {
        let t = "{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}";
        assert!(render(t, &json!({})).is_err());
    }
}
