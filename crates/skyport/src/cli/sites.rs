//! `skyport site`: registering sites (clusters), their edge agents' credentials, and which xname
//! subtrees they own (`/edge/v1/sites`).

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use skyport_client::segment;

use super::{CliResult, Global, print};

#[derive(Subcommand, Debug)]
pub enum SiteCmd {
    /// Register a site and issue its edge agent's client credentials (shown once).
    ///
    /// Examples:
    ///   skyport site add east --description "Building 3, rows A-F"
    ///   eval "$(skyport site add lab --env)"    # then skyport-edge finds them in its environment
    Add {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Print `export SKYPORT_EDGE_TOKEN_URL=... SKYPORT_EDGE_CLIENT_ID=...
        /// SKYPORT_EDGE_CLIENT_SECRET=...` lines for the agent instead of a table.
        #[arg(long)]
        env: bool,
    },
    /// Every site: credentials, assigned subtrees, what its agent last reported.
    List,
    /// One site, with its assignments.
    Show { name: String },
    /// Issue new credentials; the old ones stop working unless --keep-previous.
    ///
    /// Example (hand-over without downtime):
    ///   skyport site rotate east --keep-previous   # configure the agent with the new secret
    ///   skyport site revoke east --client-id <old id>
    Rotate {
        name: String,
        #[arg(long)]
        keep_previous: bool,
        /// Print the new credentials as `export` lines for the agent.
        #[arg(long)]
        env: bool,
    },
    /// Revoke one client of a site (--client-id), or all of them.
    Revoke {
        name: String,
        #[arg(long)]
        client_id: Option<String>,
    },
    /// Delete a site: its credentials and assignments (inventory records stay, unassigned).
    Delete { name: String },
    /// Assign an xname subtree (a cabinet, a chassis, a BMC) to a site.
    ///
    /// Example:
    ///   skyport site assign east x1000c0 x1000c1
    Assign {
        name: String,
        #[arg(required = true)]
        xnames: Vec<String>,
    },
    /// Remove a site's assignment of an xname subtree.
    Unassign {
        name: String,
        #[arg(required = true)]
        xnames: Vec<String>,
    },
}

const CREDENTIAL_COLUMNS: &[(&str, &str)] = &[
    ("SITE", "site"),
    ("CLIENT ID", "client_id"),
    ("CLIENT SECRET", "client_secret"),
    ("TOKEN URL", "token_url"),
];

/// The agent's environment for these credentials, single-quoted for a POSIX shell.
fn env_lines(v: &Value) -> String {
    let q = |k: &str| {
        let s = v.get(k).and_then(Value::as_str).unwrap_or_default();
        format!("'{}'", s.replace('\'', r"'\''"))
    };
    format!(
        "export SKYPORT_EDGE_TOKEN_URL={}\nexport SKYPORT_EDGE_CLIENT_ID={}\nexport SKYPORT_EDGE_CLIENT_SECRET={}\n",
        q("token_url"),
        q("client_id"),
        q("client_secret")
    )
}

fn print_credentials(g: &Global, v: &Value, env: bool) -> CliResult {
    if env {
        print!("{}", env_lines(v));
        Ok(())
    } else {
        print(g.output, v, CREDENTIAL_COLUMNS)
    }
}

fn path(name: &str, rest: &str) -> String {
    format!("/edge/v1/sites/{}{rest}", segment(name))
}

pub async fn site(g: &Global, c: &SiteCmd) -> CliResult {
    let client = g.client()?;
    match c {
        SiteCmd::Add {
            name,
            description,
            env,
        } => {
            let v = client
                .send(
                    Method::POST,
                    "/edge/v1/sites",
                    Some(&json!({"name": name, "description": description})),
                )
                .await?;
            print_credentials(g, &v, *env)?;
            eprintln!(
                "The secret is not stored in clear and will not be shown again: put client_id, \
                 client_secret and token_url in the site's skyport-edge configuration."
            );
            Ok(())
        }
        SiteCmd::List => {
            let v = client.get_json("/edge/v1/sites", &[]).await?;
            print(
                g.output,
                &v,
                &[
                    ("SITE", "name"),
                    ("REGISTERED", "registered"),
                    ("CLIENTS", "clients"),
                    ("ASSIGNED", "assigned"),
                    ("LAST REPORT", "status.reported_at"),
                    ("GENERATION", "status.generation"),
                    ("DESCRIPTION", "description"),
                ],
            )
        }
        SiteCmd::Show { name } => {
            let v = client.get_json(&path(name, ""), &[]).await?;
            print(g.output, &v, &[])
        }
        SiteCmd::Rotate {
            name,
            keep_previous,
            env,
        } => {
            let v = client
                .send(
                    Method::POST,
                    &path(name, "/rotate"),
                    Some(&json!({"keep_previous": keep_previous})),
                )
                .await?;
            print_credentials(g, &v, *env)
        }
        SiteCmd::Revoke { name, client_id } => {
            let body = match client_id {
                Some(id) => json!({"client_id": id}),
                None => json!({}),
            };
            let v = client
                .send(Method::POST, &path(name, "/revoke"), Some(&body))
                .await?;
            print(g.output, &v, &[("SITE", "site"), ("REVOKED", "revoked")])
        }
        SiteCmd::Delete { name } => {
            let v = client.send(Method::DELETE, &path(name, ""), None).await?;
            print(g.output, &v, &[("MESSAGE", "message")])
        }
        SiteCmd::Assign { name, xnames } => {
            let mut out = Vec::new();
            for x in xnames {
                let p = path(name, &format!("/xnames/{}", segment(x)));
                out.push(client.send(Method::PUT, &p, None).await?);
            }
            print(
                g.output,
                &Value::Array(out),
                &[("XNAME", "xname"), ("SITE", "site"), ("SOURCE", "source")],
            )
        }
        SiteCmd::Unassign { name, xnames } => {
            for x in xnames {
                let p = path(name, &format!("/xnames/{}", segment(x)));
                client.send(Method::DELETE, &p, None).await?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_survive_a_shell() {
        let v = json!({"token_url": "http://h/oauth2/token", "client_id": "skyport-1",
                       "client_secret": "a'b"});
        assert_eq!(
            env_lines(&v),
            "export SKYPORT_EDGE_TOKEN_URL='http://h/oauth2/token'\n\
             export SKYPORT_EDGE_CLIENT_ID='skyport-1'\n\
             export SKYPORT_EDGE_CLIENT_SECRET='a'\\''b'\n"
        );
    }
}
